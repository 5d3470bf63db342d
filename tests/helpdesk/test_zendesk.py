"""The zendesk kind against the fake Zendesk: one ticket per complaint across crashes, limits and outages, and back."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import col, select

from fairdesk.app import Daemon, build
from fairdesk.config.helpdesks import ZendeskHelpdesk as ZendeskSettings
from fairdesk.config.settings import SampleAccount, Settings
from fairdesk.helpdesk.base import Filing
from fairdesk.helpdesk.registry import build_helpdesks
from fairdesk.helpdesk.zendesk import ZendeskHelpdesk
from fairdesk.jobs.deliveries import deliver_due
from fairdesk.ticketing.db import make_engine, transaction
from fairdesk.ticketing.intake import subject_for
from fairdesk.ticketing.models import DeliveryState, HelpdeskDelivery, LedgerEntry, Ticket, TicketEntry, utcnow
from fairdesk.ticketing.store import add_customer_details
from tests.fakes.zendesk_server import FakeZendesk, Fault
from tests.helpdesk.support import KilledOnCreate, drain
from tests.support import FakeAdapter, SimulatedCrash, fake_classify, mention

FEED = Path(__file__).resolve().parents[2] / "fairdesk" / "listener" / "data" / "sample_feed.jsonl"
LINK = re.compile(r"/t/([A-Za-z0-9_-]{22,})")
REACH_WORDS = ("follower", "verified", "metric", "influence", "impression", "like_count", "retweet", "bio")


@pytest.fixture
def zendesk() -> Iterator[FakeZendesk]:
    """A fake Zendesk on 127.0.0.1 (random port) in a thread; its agent and token are ``email``/``token``."""
    with FakeZendesk() as server:
        yield server


def _settings(tmp_path: Path, zendesk: FakeZendesk, *, per_poll: int = 20, **zd: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        sample={"demo": SampleAccount(per_poll=per_poll)},
        helpdesk={
            "zd": ZendeskSettings(
                kind="zendesk", url=zendesk.url, email=zendesk.email, **{"api_token": zendesk.token, **zd}
            )
        },
    )


def _daemon(tmp_path: Path, zendesk: FakeZendesk, *, engine: Engine | None = None, **kw: Any) -> Daemon:
    """A daemon on the bundled sample feed (the fake content-only classifier) filing into the fake Zendesk."""
    engine = engine or make_engine(f"sqlite:///{tmp_path / 'fairdesk.db'}")
    return build(_settings(tmp_path, zendesk, **kw), classify=fake_classify, engine=engine)


@pytest.fixture
def zd_daemon(tmp_path: Path, zendesk: FakeZendesk) -> Iterator[Daemon]:
    daemon = _daemon(tmp_path, zendesk)
    yield daemon
    daemon.close()


def _refs(daemon: Daemon) -> list[str]:
    with transaction(daemon.sessions) as session:
        return sorted(t.ref for t in session.exec(select(Ticket)))


def _in_zendesk(zendesk: FakeZendesk) -> list[str]:
    return sorted(t.fields["external_id"] for t in zendesk.tickets())


def _rows(daemon: Daemon) -> list[HelpdeskDelivery]:
    with transaction(daemon.sessions) as session:
        return list(session.exec(select(HelpdeskDelivery).order_by(HelpdeskDelivery.id)))


def _later(daemon: Daemon, minutes: float = 2, owner: str = "restarted") -> int:
    now = utcnow() + timedelta(minutes=minutes)
    return deliver_due(daemon.helpdesks, sessions=daemon.sessions, policy=daemon.filing_policy, owner=owner, now=now)


def _reach_in_feed() -> set[str]:
    """What the sample feed says about its authors' reach and profiles: none of it may reach Zendesk."""
    found: set[str] = set()
    for line in FEED.read_text(encoding="utf-8").splitlines():
        post = json.loads(line)
        author = post.get("author") or {}
        found |= {author.get("bio") or "", author.get("display_name") or ""}
        numbers = [author.get("followers_count"), *(post.get("public_metrics") or {}).values()]
        found |= {str(n) for n in numbers if isinstance(n, int) and n >= 10_000}
    return {f for f in found if len(f) > 4}


def test_the_sample_feed_files_one_zendesk_ticket_per_complaint_and_nothing_else(
    zd_daemon: Daemon, zendesk: FakeZendesk
) -> None:
    drain(zd_daemon)
    assert zd_daemon.deliver() > 0
    assert zd_daemon.deliver() == 0  # nothing twice
    refs = _refs(zd_daemon)
    assert _in_zendesk(zendesk) == refs  # one each, nothing else
    with transaction(zd_daemon.sessions) as session:
        assert session.exec(select(LedgerEntry).where(LedgerEntry.outcome == "skipped")).all()
    creates = zendesk.requests("create")
    assert len(creates) == len(refs)
    keys = {r.headers["idempotency-key"] for r in creates}
    assert len(keys) == len(refs) and all(k.startswith("fairdesk-") for k in keys)
    for r in creates:
        ticket = r.json["ticket"]
        assert ticket["external_id"] in r.headers["idempotency-key"]
        assert ticket["subject"].startswith(f"[{ticket['external_id']}] ")
        assert ticket["comment"]["public"] is False  # an internal note by default
        assert "Filed by fairdesk as" in ticket["comment"]["body"]
        assert ticket["priority"] in ("urgent", "high", "normal", "low")
        assert "requester" not in ticket and "requester_id" not in ticket  # no invented requester
        assert {"fairdesk", "fairdesk_social", "fairdesk_sample"} <= set(ticket["tags"])
    assert {t.fields["requester_id"] for t in zendesk.tickets()} == {zendesk.account.agent.id}


def _feed_texts() -> list[str]:
    return [json.loads(line)["text"] for line in FEED.read_text(encoding="utf-8").splitlines()]


def _what_fairdesk_added(body: Any) -> Any:
    """A request body without the customers' own words (which may say anything): what fairdesk itself tells."""
    ticket = body.get("ticket") if isinstance(body, dict) else None
    if not isinstance(ticket, dict):
        return body
    ticket = dict(ticket)
    if "comment" in ticket:
        comment = ticket["comment"]["body"]
        for text in _feed_texts():
            comment = comment.replace(text, "")
        ticket["comment"] = {**ticket["comment"], "body": comment}
    if "subject" in ticket:
        words = ticket["subject"].split("] ", 1)[1]
        assert any(words == subject_for(text) for text in _feed_texts()), ticket["subject"]  # the post's own words
        ticket["subject"] = ticket["subject"].split("] ", 1)[0]
    return {**body, "ticket": ticket}


def test_every_byte_sent_to_zendesk_is_free_of_reach(zd_daemon: Daemon, zendesk: FakeZendesk) -> None:
    drain(zd_daemon)
    zd_daemon.deliver()
    with transaction(zd_daemon.sessions) as session:
        loud = ("jonah_vale", "nightshift_radio", "marlowe_finch", "brightside_pod")  # 2M followers each
        ticket = session.exec(select(Ticket).where(col(Ticket.author_handle).in_(loud))).first()
        assert ticket is not None
        add_customer_details(
            session=session, ticket=ticket, order_number="A-17", details="since Monday", email="j@example.com",
            consent=True,
        )  # fmt: skip
    zd_daemon.deliver()
    zd_daemon.sync()
    sent = zendesk.requests()
    assert {r.endpoint for r in sent} == {"create", "update", "users", "show_many"}  # follow-ups, details, status
    forbidden = _reach_in_feed()
    assert "2000000" in forbidden and any("Singer" in f for f in forbidden)  # the feed does carry reach
    for request in sent:
        wire = " ".join([request.method, request.path, json.dumps(request.query), json.dumps(request.headers)])
        assert not any(value in wire + request.raw.decode() for value in forbidden), request.raw[:500]
        told = wire + json.dumps(_what_fairdesk_added(request.json), ensure_ascii=False)
        assert not any(word in told.lower() for word in REACH_WORDS), told[:800]


@pytest.mark.parametrize("moment", ["before the create", "after Zendesk created it", "with the answer lost"])
def test_a_kill_during_delivery_leaves_exactly_one_zendesk_ticket(
    tmp_path: Path, zendesk: FakeZendesk, engine: Engine, moment: str
) -> None:
    daemon = _daemon(tmp_path, zendesk, engine=engine)
    try:
        drain(daemon)
        real = daemon.helpdesks["zd"]

        def at_kill(filing: Filing) -> None:
            if moment == "after Zendesk created it":
                real.create(filing)
            elif moment == "with the answer lost":
                zendesk.inject("create", Fault.lost())
                with pytest.raises(Exception, match="could not be reached"):
                    real.create(filing)

        with pytest.raises(SimulatedCrash):
            deliver_due(
                {"zd": KilledOnCreate(real, at_kill=at_kill)},
                sessions=daemon.sessions,
                policy=daemon.filing_policy,
                owner="killed",
            )
        _later(daemon)
        assert _in_zendesk(zendesk) == _refs(daemon)  # exactly one each
        assert {r.state for r in _rows(daemon)} == {DeliveryState.FILED}
        assert len(zendesk.requests("list")) == 1  # the uncertain one was settled by its external_id first
    finally:
        daemon.close()


def test_a_crash_settled_after_zendesk_forgot_the_idempotency_key_still_files_once(
    zd_daemon: Daemon, zendesk: FakeZendesk
) -> None:
    zd_daemon.poll_all()
    real = zd_daemon.helpdesks["zd"]

    with pytest.raises(SimulatedCrash):
        deliver_due(
            {"zd": KilledOnCreate(real, nth=1, at_kill=real.create)},
            sessions=zd_daemon.sessions,
            policy=zd_daemon.filing_policy,
            owner="k",
        )
    zendesk.advance(hours=3)  # down for longer than Zendesk keeps an idempotency key
    _later(zd_daemon, minutes=200)
    assert _in_zendesk(zendesk) == _refs(zd_daemon)
    assert len(set(_in_zendesk(zendesk))) == len(zendesk.tickets())


def test_a_lost_or_garbled_answer_is_settled_by_the_external_id_not_filed_again(
    zd_daemon: Daemon, zendesk: FakeZendesk
) -> None:
    zd_daemon.poll_all()
    zendesk.inject("create", Fault.lost(), Fault.malformed())
    zd_daemon.deliver()
    failed = [r for r in _rows(zd_daemon) if r.state != DeliveryState.FILED]
    assert len(failed) == 2 and all(r.next_attempt_at - utcnow() < timedelta(seconds=60) for r in failed)
    assert len(zendesk.tickets()) == len(_rows(zd_daemon))  # Zendesk did the work both times
    _later(zd_daemon)
    assert _in_zendesk(zendesk) == _refs(zd_daemon)
    assert len(zendesk.requests("list")) == 2
    assert {r.state for r in _rows(zd_daemon)} == {DeliveryState.FILED}


def test_a_retried_create_gets_zendesks_first_answer_back(zendesk: FakeZendesk, zd_daemon: Daemon) -> None:
    zd_daemon.poll_all()
    helpdesk = zd_daemon.helpdesks["zd"]
    with transaction(zd_daemon.sessions) as session:
        from fairdesk.jobs.deliveries import filing_for

        filing = filing_for(session.exec(select(Ticket)).first(), zd_daemon.filing_policy)  # type: ignore[arg-type]
    zendesk.inject("create", Fault.lost())
    with pytest.raises(Exception, match="could not be reached"):
        helpdesk.create(filing)
    remote_id = helpdesk.create(filing)  # the same Idempotency-Key: Zendesk replays, no second ticket
    assert [r.response_headers.get("x-idempotency-lookup") for r in zendesk.requests("create")] == [None, "hit"]
    assert len(zendesk.tickets()) == 1 and remote_id == str(zendesk.tickets()[0].id)
    # The customer gave an email since: another body under the same key is Zendesk's 400, settled by external_id.
    changed = type(filing)(**{**{k: getattr(filing, k) for k in filing.__slots__}, "requester_email": "p@example.com"})
    assert helpdesk.create(changed) == remote_id
    assert zendesk.requests("create")[-1].status == 400 and len(zendesk.tickets()) == 1


def test_a_timeout_is_retried_and_files_once(tmp_path: Path, zendesk: FakeZendesk) -> None:
    daemon = _daemon(tmp_path, zendesk, per_poll=1, timeout_seconds=0.3)
    try:
        daemon.poll_all()
        zendesk.inject("create", Fault.slow(1.0))
        assert daemon.deliver() == 0
        (row,) = _rows(daemon)
        assert "in time" in (row.last_error or "")
        _later(daemon)
        assert _in_zendesk(zendesk) == _refs(daemon) and len(zendesk.tickets()) == 1
        assert {r.state for r in _rows(daemon)} == {DeliveryState.FILED}
    finally:
        daemon.close()


def test_429_waits_retry_after_and_5xx_is_retried_within_a_minute(zd_daemon: Daemon, zendesk: FakeZendesk) -> None:
    zd_daemon.poll_all()
    zendesk.inject("create", Fault.rate_limited(retry_after=7), Fault.error(503))
    zd_daemon.deliver()
    rows = _rows(zd_daemon)
    limited = next(r for r in rows if "429" in (r.last_error or ""))
    broken = next(r for r in rows if "503" in (r.last_error or ""))
    assert timedelta(seconds=5) < limited.next_attempt_at - utcnow() <= timedelta(seconds=7)  # Retry-After honoured
    assert broken.next_attempt_at - utcnow() < timedelta(seconds=60)  # first retry within a minute
    assert _in_zendesk(zendesk) == sorted(set(_refs(zd_daemon)) - {f"FD-{r.ticket_id:06d}" for r in (limited, broken)})
    _later(zd_daemon)
    assert _in_zendesk(zendesk) == _refs(zd_daemon)


def test_a_used_up_rate_limit_pauses_before_zendesk_has_to_say_429(zd_daemon: Daemon, zendesk: FakeZendesk) -> None:
    zd_daemon.poll_all()
    moment = zendesk.now()
    zendesk.advance(seconds=60 - moment.second - moment.microsecond / 1e6 + 0.5)  # at the start of a minute
    zendesk.limit = 2
    zd_daemon.deliver()
    assert len(zendesk.requests()) == 2  # the second answer said 0 remaining: no third request
    assert all(r.status != 429 for r in zendesk.requests())
    waiting = [r for r in _rows(zd_daemon) if r.state != DeliveryState.FILED]
    assert waiting and all("rate limit" in (r.last_error or "") for r in waiting)
    assert all(r.next_attempt_at - utcnow() > timedelta(seconds=30) for r in waiting)  # waits for the reset


def test_a_status_changed_in_zendesk_shows_on_the_customers_page(zd_daemon: Daemon, zendesk: FakeZendesk) -> None:
    zd_daemon.poll_all()
    zd_daemon.send_replies()
    zd_daemon.deliver()
    reply = zd_daemon.adapters[("sample", "demo")].sent()[0]  # type: ignore[attr-defined]
    token = LINK.search(reply["text"]).group(1)  # type: ignore[union-attr]
    with transaction(zd_daemon.sessions) as session:
        ticket = session.exec(select(Ticket).where(Ticket.post_id == reply["in_reply_to"])).one()
        row = session.exec(select(HelpdeskDelivery).where(HelpdeskDelivery.ticket_id == ticket.id)).one()
    zendesk.set_status(row.remote_id or "", "solved")
    assert zd_daemon.sync() == 1
    with TestClient(zd_daemon.web_app) as client:
        page = client.get(f"/t/{token}").text
    assert "solved" in page
    zendesk.set_status(row.remote_id or "", "hold")  # waiting on a third party: still being worked on
    assert zd_daemon.sync() == 1
    with transaction(zd_daemon.sessions) as session:
        assert session.get(Ticket, ticket.id).status == "open"  # type: ignore[union-attr]
    (show_many,) = {r.query["ids"] for r in zendesk.requests("show_many")[-1:]}
    assert row.remote_id in show_many.split(",")


def test_status_is_read_in_batches_of_100(zendesk: FakeZendesk) -> None:
    helpdesk = ZendeskHelpdesk(
        "zd", base_url=zendesk.url, email=zendesk.email, api_token=zendesk.token, status_map={"new": "new"}
    )
    assert helpdesk.statuses([str(i) for i in range(1, 251)]) == {}
    assert [len(r.query["ids"].split(",")) for r in zendesk.requests("show_many")] == [100, 100, 50]
    helpdesk.close()


def test_details_and_email_from_the_customers_page_reach_the_zendesk_ticket(
    zd_daemon: Daemon, zendesk: FakeZendesk
) -> None:
    zd_daemon.poll_all()
    zd_daemon.send_replies()
    zd_daemon.deliver()
    reply = zd_daemon.adapters[("sample", "demo")].sent()[0]  # type: ignore[attr-defined]
    token = LINK.search(reply["text"]).group(1)  # type: ignore[union-attr]
    with TestClient(zd_daemon.web_app) as client:
        page = client.get(f"/t/{token}")
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        form = {"csrf": csrf, "details": "Order 4411, the router blinks red", "email": "pat@example.com"}
        assert client.post(f"/t/{token}", data={**form, "consent": "yes"}).status_code == 200
    zd_daemon.deliver()
    zd_daemon.deliver()
    with transaction(zd_daemon.sessions) as session:
        ticket = session.exec(select(Ticket).where(Ticket.post_id == reply["in_reply_to"])).one()
        row = session.exec(select(HelpdeskDelivery).where(HelpdeskDelivery.ticket_id == ticket.id)).one()
    filed = zendesk.account.get(int(row.remote_id or 0))
    pat = zendesk.account.user_by_email("pat@example.com")
    assert pat is not None and filed.fields["requester_id"] == pat.id
    details = [c for c in filed.comments if "the router blinks red" in c["body"]]
    assert len(details) == 1 and details[0]["public"] is False  # once, as an internal note


def test_a_follow_up_post_becomes_an_internal_note_on_the_same_ticket(
    tmp_path: Path, zendesk: FakeZendesk, engine: Engine
) -> None:
    adapter = FakeAdapter(mentions=[mention("1", "my router is broken")])
    settings = _settings(tmp_path, zendesk)
    daemon = build(settings.model_copy(update={"sample": {}}), adapters={("fake", "brand"): adapter},
                   classify=fake_classify, engine=engine)  # fmt: skip
    try:
        daemon.poll_all()
        daemon.deliver()
        adapter.mentions.append(
            mention("2", "still broken this morning", author_id="author-1", conversation_id="1", reply_to_id="1")
        )
        daemon.poll_all()
        daemon.deliver()
        (ticket,) = zendesk.tickets()
        assert [c["public"] for c in ticket.comments] == [False, False]
        assert "still broken this morning" in ticket.comments[1]["body"]
    finally:
        daemon.close()


def test_a_422_is_a_permanent_refusal_recorded_with_zendesks_details(tmp_path: Path, zendesk: FakeZendesk) -> None:
    daemon = _daemon(tmp_path, zendesk, per_poll=3, group_id=12345)  # no such group
    try:
        daemon.poll_all()
        daemon.deliver()
        rows = _rows(daemon)
        assert rows and all(r.state == DeliveryState.FAILED for r in rows)
        assert all(
            "422" in (r.last_error or "") and "group_id: Group: is invalid" in (r.last_error or "") for r in rows
        )
        with transaction(daemon.sessions) as session:
            notes = [e.body for e in session.exec(select(TicketEntry)) if "refused" in e.body]
        assert len(notes) == len(rows) and "group_id" in notes[0]
        assert zendesk.tickets() == [] and daemon.deliver() == 0  # not retried
    finally:
        daemon.close()


def test_a_wrong_token_is_refused_with_zendesks_words(tmp_path: Path, zendesk: FakeZendesk) -> None:
    daemon = _daemon(tmp_path, zendesk, per_poll=2, api_token="not-the-token")
    try:
        daemon.poll_all()
        daemon.deliver()
        assert {r.state for r in _rows(daemon)} == {DeliveryState.FAILED}
        assert all("401" in (r.last_error or "") and "authenticate" in (r.last_error or "") for r in _rows(daemon))
    finally:
        daemon.close()


def test_the_first_comment_is_public_when_configured(tmp_path: Path, zendesk: FakeZendesk) -> None:
    daemon = _daemon(tmp_path, zendesk, per_poll=2, public_first_comment=True, tags=["Social"])
    try:
        daemon.poll_all()
        daemon.deliver()
        assert zendesk.tickets() and all(t.comments[0]["public"] for t in zendesk.tickets())
        assert all("social" in t.fields["tags"] for t in zendesk.tickets())
    finally:
        daemon.close()


def test_settings_address_registry_and_docs(tmp_path: Path, zendesk: FakeZendesk) -> None:
    from fairdesk.config.example import example_toml

    ok = {"kind": "zendesk", "email": "bot@acme.example", "api_token": "a-real-looking-token"}
    assert ZendeskSettings(**ok, subdomain="acme").base_url == "https://acme.zendesk.com"  # type: ignore[arg-type]
    for wrong in ({}, {"subdomain": "acme", "url": zendesk.url}, {"subdomain": "https://acme.zendesk.com"}):
        with pytest.raises(ValueError):
            ZendeskSettings(**ok, **wrong)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="placeholder"):
        ZendeskSettings(**{**ok, "api_token": "changethis"}, subdomain="acme")  # type: ignore[arg-type]
    built = build_helpdesks(_settings(tmp_path, zendesk))
    assert isinstance(built["zd"], ZendeskHelpdesk)
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    example = example_toml()
    for key, info in ZendeskSettings.model_fields.items():
        assert info.description and len(info.description) > 10, key
        assert f"`helpdesk.NAME.{key}` (zendesk)" in readme or key in ("timeout_seconds", "retry_seconds", "kind")
        assert info.description in example, f"{key} is missing from the example config"
