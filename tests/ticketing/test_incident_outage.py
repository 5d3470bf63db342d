"""An outage through the real intake path: 200 posts from 150 people and a 9M-follower thread with 500 reposts make
one incident of 150 reporters, 150 tickets and 150 replies; the loud thread weighs what any one reporter weighs."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import col, func, select

from fairdesk.app import Daemon, build
from fairdesk.config.settings import SampleAccount, Settings
from fairdesk.listener.sample import SampleAdapter
from fairdesk.ticketing.db import transaction
from fairdesk.ticketing.incident_desk import set_incident_status, split_ticket
from fairdesk.ticketing.models import (
    EntryKind,
    HelpdeskDelivery,
    Incident,
    LedgerEntry,
    Outbox,
    Outcome,
    Status,
    Ticket,
    TicketEntry,
)
from fairdesk.ticketing.priority import incident_priority
from tests.helpdesk.support import drain
from tests.reach.harness import RecordedHelpdesks
from tests.support import fake_classify

HANDLE = "acme"
START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
TOWNS = ("Leeds", "York", "Hull", "Derby", "Bath", "Ely", "Wells", "Ripon", "Truro", "Bangor")
# One problem, said in different ways (the fake classifier calls each a complaint; the category is 'outage').
OUTAGE = (
    "@acme internet down again, nothing loads in {town}",
    "@acme is your internet down? nothing loads here in {town}",
    "@acme internet still down in {town}, nothing loads, fix it",
    "@acme whole of {town} has internet down, nothing loads",
)
LOUD = "loud_brand_fan"  # 9M followers, verified; their thread is one reporter's
PEOPLE = 150
POSTS = 200
REPOSTS = 500


def _post(number: int, author: str, text: str, at: datetime, *, reach: int, **extra: Any) -> dict[str, Any]:
    """A raw sample-feed post carrying its author's reach, as a platform would deliver it."""
    post_id = f"p{number:04d}"
    return {
        "id": post_id,
        "created_at": at.isoformat().replace("+00:00", "Z"),
        "kind": "mention",
        "text": text,
        "author": {
            "id": f"id-{author}",
            "handle": author,
            "display_name": author.title(),
            "followers_count": reach,
            "verified": reach > 1_000_000,
        },
        "public_metrics": {"like_count": reach // 100, "retweet_count": reach // 1000, "impression_count": reach * 3},
        "in_reply_to": None,
        "conversation_id": post_id,
        "mentions": [HANDLE],
    } | extra


def outage_feed() -> list[dict[str, Any]]:
    """200 complaint posts from 150 people in 50 minutes: 149 people post in their own thread, 24 of them twice more
    in new threads; the 9M account posts a thread of 3 and is reposted 500 times."""
    posts: list[dict[str, Any]] = []
    at = START

    def text(n: int) -> str:
        return OUTAGE[n % len(OUTAGE)].format(town=TOWNS[n % len(TOWNS)])

    loud_root = _post(0, LOUD, "@acme internet down for all of Leeds, nothing loads!!", at, reach=9_000_000)
    posts.append(loud_root)
    for reply in (1, 2):
        at += timedelta(seconds=10)
        posts.append(
            _post(
                reply,
                LOUD,
                f"@acme still down, {reply} hours now, fix it",
                at,
                reach=9_000_000,
                in_reply_to=loud_root["id"],
                conversation_id=loud_root["id"],
            )
        )
    people = [f"person{n:03d}" for n in range(PEOPLE - 1)]
    again = [p for p in people[:24] for _ in range(2)]  # 24 people post twice more, each in a new thread
    authors = people + again
    assert len(authors) + 3 == POSTS
    for n, author in enumerate(authors, start=3):
        at += timedelta(seconds=15)
        posts.append(_post(n, author, text(n), at, reach=3 + n % 40))
    for n in range(REPOSTS):  # amplification: every one a big account of its own
        posts.append(
            _post(
                1000 + n,
                f"fan{n:03d}",
                "RT " + loud_root["text"],
                START + timedelta(seconds=3 + n),
                reach=100_000 + n,
                kind="repost",
            )
        )
    posts.sort(key=lambda p: str(p["created_at"]))
    return posts


@dataclass
class Outage:
    daemon: Daemon
    adapter: SampleAdapter
    recorded: RecordedHelpdesks


def run_feed(tmp_path: Path, engine: Engine, feed: list[dict[str, Any]], **incidents: Any) -> Outage:
    path = tmp_path / "feed.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in feed), encoding="utf-8")
    account = SampleAccount(handle=HANDLE, feed=path, per_poll=100)
    settings = Settings(data_dir=tmp_path / "data", incidents=incidents)
    adapter = SampleAdapter("outage", account, replies_path=tmp_path / "replies.jsonl", public_url=settings.public_url)
    recorded = RecordedHelpdesks()
    daemon = build(
        settings,
        adapters={("sample", "outage"): adapter},
        classify=fake_classify,
        engine=engine,
        helpdesks=recorded.build(["webhook"]),
    )
    drain(daemon)
    while daemon.send_replies():
        pass
    daemon.deliver()
    return Outage(daemon, adapter, recorded)


@pytest.fixture
def outage(tmp_path: Path, engine: Engine) -> Iterator[Outage]:
    """The outage feed polled through the sample adapter, replies sent and tickets filed in a recorded webhook."""
    run = run_feed(tmp_path, engine, outage_feed())
    yield run
    run.daemon.close()


def test_one_outage_is_one_incident_of_150_reporters_with_one_reply_each(outage: Outage) -> None:
    with transaction(outage.daemon.sessions) as session:
        incidents = list(session.exec(select(Incident)))
        tickets = list(session.exec(select(Ticket)))
        ledger = Counter(str(e.outcome) for e in session.exec(select(LedgerEntry)))
        outbox = list(session.exec(select(Outbox)))
    assert ledger == {Outcome.TICKETED: PEOPLE, Outcome.APPENDED: POSTS - PEOPLE, Outcome.SKIPPED: REPOSTS}
    assert len(incidents) == 1
    incident = incidents[0]
    assert incident.reporters == PEOPLE
    assert len(tickets) == PEOPLE and {t.incident_id for t in tickets} == {incident.id}
    assert len({t.author_id for t in tickets}) == PEOPLE  # one ticket per person, whoever posted most
    assert len(outbox) == PEOPLE and len(outage.adapter.sent()) == PEOPLE  # one public reply per reporter
    assert incident.priority == incident_priority(min(t.priority for t in tickets), PEOPLE)
    for ticket in tickets:
        assert ticket.incident_reason and f"incident {incident.ref}" in ticket.incident_reason
        assert "same category 'outage'" in ticket.incident_reason and "(window 2 h)" in ticket.incident_reason


def test_the_9m_thread_weighs_exactly_what_any_one_reporter_weighs(outage: Outage) -> None:
    sessions = outage.daemon.sessions
    with transaction(sessions) as session:
        incident = session.exec(select(Incident)).one()
        loud = session.exec(select(Ticket).where(Ticket.author_handle == LOUD)).one()
        quiet = session.exec(select(Ticket).where(Ticket.author_handle == "person000")).one()
        loud_posts = session.exec(
            select(func.count())
            .select_from(TicketEntry)
            .where(TicketEntry.ticket_id == loud.id, TicketEntry.kind == EntryKind.POST)
        ).one()
        quiet_posts = session.exec(
            select(func.count())
            .select_from(TicketEntry)
            .where(TicketEntry.ticket_id == quiet.id, TicketEntry.kind == EntryKind.POST)
        ).one()
        assert (loud_posts, quiet_posts) == (2, 2)  # both posted three times: thread replies vs. new threads
        before = incident.reporters
        split_ticket(session=session, incident=incident, ticket=loud, actor="alex")
        without_loud = incident.reporters
        split_ticket(session=session, incident=incident, ticket=quiet, actor="alex")
        without_both = incident.reporters
    # Taking either person out takes exactly one reporter away: 500 reposts and 9M followers add nothing.
    assert before - without_loud == 1 == without_loud - without_both


def test_a_status_set_once_reaches_every_reporter_and_their_helpdesk_ticket(outage: Outage) -> None:
    sessions = outage.daemon.sessions
    with transaction(sessions) as session:
        incident = session.exec(select(Incident)).one()
        changed = set_incident_status(session=session, incident=incident, status=Status.SOLVED, actor="alex")
    assert changed == PEOPLE
    outage.daemon.deliver()
    with transaction(sessions) as session:
        tickets = list(session.exec(select(Ticket)))
        status_entries = list(
            session.exec(
                select(TicketEntry).where(TicketEntry.kind == EntryKind.STATUS, col(TicketEntry.public).is_(True))
            )
        )
        deliveries = list(session.exec(select(HelpdeskDelivery)))
    assert {t.status for t in tickets} == {Status.SOLVED}
    assert all(t.first_response_at is not None for t in tickets)
    assert len(status_entries) == PEOPLE and {e.actor for e in status_entries} == {"alex"}
    entry_of = {e.ticket_id: e.id for e in status_entries}
    assert len(deliveries) == PEOPLE
    assert all(d.forwarded_entry_id >= entry_of[d.ticket_id] for d in deliveries)
    changed_events = [
        r
        for r in outage.recorded.requests
        if isinstance(r["body"], dict) and r["body"].get("type") == "ticket.status_changed"
    ]
    assert len(changed_events) == PEOPLE
