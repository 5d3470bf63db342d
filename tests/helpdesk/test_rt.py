"""The rt kind against a real Request Tracker 5: one RT ticket per complaint, across crashes and outages, and back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from fairdesk.app import Daemon, build, load_default_classifier
from fairdesk.config.helpdesks import RtHelpdesk as RtSettings
from fairdesk.config.settings import SampleAccount, Settings
from fairdesk.jobs.deliveries import deliver_due
from fairdesk.ticketing.db import make_engine, transaction
from fairdesk.ticketing.models import DeliveryState, HelpdeskDelivery, LedgerEntry, Ticket, utcnow
from tests.helpdesk.support import KilledOnCreate, drain
from tests.peers.rt import RtPeer
from tests.support import SimulatedCrash, fake_classify

pytestmark = pytest.mark.rt

LINK = re.compile(r"/t/([A-Za-z0-9_-]{22,})")
REACH_WORDS = ("follower", "verified", "metric", "influence", "impression")


def _daemon(tmp_path: Path, rt_peer: RtPeer, queue: str, *, classify=fake_classify, per_poll: int = 20, **rt) -> Daemon:  # type: ignore[no-untyped-def]
    settings = Settings(
        data_dir=tmp_path / "data",
        sample={"demo": SampleAccount(per_poll=per_poll)},
        helpdesk={"rt": RtSettings(kind="rt", url=rt_peer.url, queue=queue, token=rt_peer.token, **rt)},  # type: ignore[arg-type]
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'fairdesk.db'}")
    return build(settings, classify=classify, engine=engine)


@pytest.fixture
def rt_daemon(tmp_path: Path, rt_peer: RtPeer) -> Iterator[tuple[Daemon, str]]:
    """A daemon on the bundled sample feed (the fake content-only classifier) filing into a fresh RT queue."""
    queue = rt_peer.new_queue()
    daemon = _daemon(tmp_path, rt_peer, queue)
    yield daemon, queue
    daemon.close()


def _ticketed(daemon: Daemon) -> dict[str, str]:
    with transaction(daemon.sessions) as session:
        return {t.ref: t.post_id or "" for t in session.exec(select(Ticket))}


def _refs_in_rt(rt_peer: RtPeer, queue: str) -> list[str]:
    refs = []
    for ticket in rt_peer.tickets(queue):
        match = re.match(r"\[(FD-\d{6})\]", ticket["Subject"])
        assert match, ticket["Subject"]
        refs.append(match.group(1))
    return refs


@pytest.mark.slow
def test_the_sample_feed_fills_the_queue_with_one_ticket_per_complaint_and_nothing_else(
    tmp_path: Path, rt_peer: RtPeer
) -> None:
    queue = rt_peer.new_queue()
    settings = Settings(data_dir=tmp_path / "model-settings")
    daemon = _daemon(tmp_path, rt_peer, queue, classify=load_default_classifier(settings))  # the shipped model
    try:
        drain(daemon)
        assert daemon.deliver() > 0
        tickets = _ticketed(daemon)
        assert sorted(_refs_in_rt(rt_peer, queue)) == sorted(tickets)  # one each, nothing else
        with transaction(daemon.sessions) as session:
            skipped = session.exec(select(LedgerEntry).where(LedgerEntry.outcome == "skipped")).all()
        assert skipped, "the sample feed has posts that are not complaints; none of them may reach RT"
        for rt_ticket in rt_peer.tickets(queue)[:5]:
            (create,) = [tx for tx in rt_peer.history(rt_ticket["id"]) if tx["Type"] == "Create"]
            body = create["Content"]
            assert "Filed by fairdesk as" in body and "priority" in body
            told = body.split("\n—\n", 1)[1]  # everything fairdesk added to the customer's own words
            assert not any(word in told.lower() for word in REACH_WORDS), told
            assert rt_ticket["Requestors"] == []  # no invented requester: RT would mail it
    finally:
        daemon.close()


@pytest.mark.parametrize("moment", ["before the create", "after RT created it"])
def test_a_crash_during_delivery_leaves_exactly_one_rt_ticket(
    rt_daemon: tuple[Daemon, str], rt_peer: RtPeer, moment: str
) -> None:
    daemon, queue = rt_daemon
    drain(daemon)
    real = daemon.helpdesks["rt"]

    killed = KilledOnCreate(real, at_kill=real.create if moment == "after RT created it" else None)
    with pytest.raises(SimulatedCrash):
        deliver_due({"rt": killed}, sessions=daemon.sessions, policy=daemon.filing_policy, owner="killed")
    # The restarted daemon (its lease on the row ran out) settles the uncertain one by asking RT, then goes on.
    later = utcnow() + timedelta(minutes=1)
    deliver_due(daemon.helpdesks, sessions=daemon.sessions, policy=daemon.filing_policy, owner="restarted", now=later)
    refs = _refs_in_rt(rt_peer, queue)
    assert sorted(refs) == sorted(_ticketed(daemon)) and len(refs) == len(set(refs))
    with transaction(daemon.sessions) as session:
        assert {r.state for r in session.exec(select(HelpdeskDelivery))} == {DeliveryState.FILED}


def test_rt_down_for_a_while_then_back_gets_everything(rt_daemon: tuple[Daemon, str], rt_peer: RtPeer) -> None:
    daemon, queue = rt_daemon
    rt_peer.down()
    try:
        drain(daemon)
        assert daemon.deliver() == 0
        with TestClient(daemon.web_app) as client:
            health = client.get("/healthz").json()
        assert (
            health["helpdesks"][0]["last_error"] and "RT could not be reached" in health["helpdesks"][0]["last_error"]
        )
        with transaction(daemon.sessions) as session:
            rows = session.exec(select(HelpdeskDelivery)).all()
        assert rows and all(r.state != DeliveryState.FILED for r in rows)
        assert all(r.next_attempt_at - utcnow() < timedelta(seconds=60) for r in rows)  # first retry within a minute
    finally:
        rt_peer.up()
    later = utcnow() + timedelta(minutes=2)
    deliver_due(daemon.helpdesks, sessions=daemon.sessions, policy=daemon.filing_policy, owner="x", now=later)
    assert sorted(_refs_in_rt(rt_peer, queue)) == sorted(_ticketed(daemon))


def test_an_agent_resolving_in_rt_shows_on_the_customers_page(rt_daemon: tuple[Daemon, str], rt_peer: RtPeer) -> None:
    daemon, queue = rt_daemon
    daemon.poll_all()
    daemon.send_replies()
    daemon.deliver()
    sample = daemon.adapters[("sample", "demo")]
    reply = sample.sent()[0]  # type: ignore[attr-defined]
    token = LINK.search(reply["text"]).group(1)  # type: ignore[union-attr]
    with transaction(daemon.sessions) as session:
        ticket = session.exec(select(Ticket).where(Ticket.post_id == reply["in_reply_to"])).one()
        remote_id = session.exec(
            select(HelpdeskDelivery.remote_id).where(HelpdeskDelivery.ticket_id == ticket.id)
        ).one()
    rt_peer.set_status(remote_id, "resolved")  # type: ignore[arg-type]
    assert daemon.sync() >= 1
    with TestClient(daemon.web_app) as client:
        page = client.get(f"/t/{token}").text
    assert "solved" in page
    with transaction(daemon.sessions) as session:
        row = session.exec(select(HelpdeskDelivery).where(HelpdeskDelivery.ticket_id == ticket.id)).one()
    assert row.remote_status == "solved"


def test_details_and_email_from_the_customers_page_reach_the_rt_ticket(
    rt_daemon: tuple[Daemon, str], rt_peer: RtPeer
) -> None:
    daemon, queue = rt_daemon
    daemon.poll_all()
    daemon.send_replies()
    daemon.deliver()
    reply = daemon.adapters[("sample", "demo")].sent()[0]  # type: ignore[attr-defined]
    token = LINK.search(reply["text"]).group(1)  # type: ignore[union-attr]
    with TestClient(daemon.web_app) as client:
        page = client.get(f"/t/{token}")
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        sent = client.post(
            f"/t/{token}",
            data={
                "csrf": csrf,
                "details": "Order 4411, the router blinks red",
                "email": "pat@example.com",
                "consent": "yes",
            },
        )
    assert sent.status_code == 200
    daemon.deliver()
    with transaction(daemon.sessions) as session:
        ticket = session.exec(select(Ticket).where(Ticket.post_id == reply["in_reply_to"])).one()
        remote_id = session.exec(
            select(HelpdeskDelivery.remote_id).where(HelpdeskDelivery.ticket_id == ticket.id)
        ).one()
    rt_ticket = rt_peer.ticket(remote_id)  # type: ignore[arg-type]
    assert rt_ticket["Requestors"] == ["pat@example.com"]
    comments = [tx["Content"] for tx in rt_peer.history(remote_id) if tx["Type"] == "Comment"]  # type: ignore[arg-type]
    assert any("the router blinks red" in c for c in comments), comments
    daemon.deliver()
    assert len([tx for tx in rt_peer.history(remote_id) if tx["Type"] == "Comment"]) == len(
        comments
    )  # once  # type: ignore[arg-type]


def test_a_queue_without_rights_is_a_permanent_refusal_with_rts_reason(tmp_path: Path, rt_peer: RtPeer) -> None:
    queue = rt_peer.new_queue(rights=False)
    daemon = _daemon(tmp_path, rt_peer, queue, per_poll=3)
    try:
        daemon.poll_all()
        daemon.deliver()
        with transaction(daemon.sessions) as session:
            rows = session.exec(select(HelpdeskDelivery)).all()
        assert rows and all(r.state == DeliveryState.FAILED for r in rows)
        assert all("RT" in (r.last_error or "") for r in rows)
    finally:
        daemon.close()


def test_a_reference_field_is_filled_and_used_to_settle(tmp_path: Path, rt_peer: RtPeer) -> None:
    queue = rt_peer.new_queue()
    rt_peer.add_custom_field(queue, "External ID")
    daemon = _daemon(tmp_path, rt_peer, queue, per_poll=3, reference_field="External ID")
    try:
        daemon.poll_all()
        daemon.deliver()
        (rt_ticket, *_) = rt_peer.tickets(queue)
        ref = rt_ticket["Subject"][1:10]
        assert rt_ticket["CustomFields"]["External ID"] == [ref]
        filing_ticket = next(iter(_ticketed(daemon)))
        assert daemon.helpdesks["rt"].find(_filing(daemon, filing_ticket)) is not None
    finally:
        daemon.close()


def test_an_unknown_reference_field_is_refused_not_silently_dropped(tmp_path: Path, rt_peer: RtPeer) -> None:
    queue = rt_peer.new_queue()
    daemon = _daemon(tmp_path, rt_peer, queue, per_poll=3, reference_field="No Such Field")
    try:
        daemon.poll_all()
        daemon.deliver()
        with transaction(daemon.sessions) as session:
            row = session.exec(select(HelpdeskDelivery)).first()
        assert row is not None and row.state == DeliveryState.FAILED
        assert "No Such Field" in (row.last_error or "") and "dropped" in (row.last_error or "")
    finally:
        daemon.close()


def _filing(daemon: Daemon, ref: str):  # type: ignore[no-untyped-def]
    from fairdesk.jobs.deliveries import filing_for

    with transaction(daemon.sessions) as session:
        ticket = session.get(Ticket, int(ref.removeprefix("FD-")))
        assert ticket is not None
        return filing_for(ticket, daemon.filing_policy)
