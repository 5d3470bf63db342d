"""The webhook kind against a real local receiver: signed, one delivery per event, retried with the same id."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from fairdesk.app import Daemon, build
from fairdesk.config.helpdesks import WebhookHelpdesk as WebhookSettings
from fairdesk.config.settings import Settings
from fairdesk.helpdesk.webhook import WebhookHelpdesk
from fairdesk.jobs.deliveries import deliver_due
from fairdesk.ticketing.db import transaction
from fairdesk.ticketing.models import DeliveryState, HelpdeskDelivery, Ticket, TicketEntry, utcnow
from fairdesk.ticketing.store import add_customer_details, set_status
from tests.helpdesk.support import KilledOnCreate
from tests.peers.webhook import WebhookReceiver
from tests.support import FakeAdapter, SimulatedCrash, fake_classify, mention

REACH_WORDS = ("follower", "verified", "metric", "influence", "reach", "impression", "like_count", "retweet")
TICKET_KEYS = {
    "ref", "subject", "text", "channel", "platform", "post_url", "customer", "classification",
    "category", "priority", "created_at", "agent_url",
}  # fmt: skip


@pytest.fixture
def hooked(
    tmp_path: Path, engine: Engine, fake_adapter: FakeAdapter, webhook_receiver: WebhookReceiver
) -> Iterator[Daemon]:
    """A daemon on the fake platform whose one helpdesk is a webhook to the local receiver."""
    settings = Settings(
        data_dir=tmp_path / "data",
        helpdesk={
            "hooks": WebhookSettings(kind="webhook", url=webhook_receiver.url, secret=webhook_receiver.secret)  # type: ignore[arg-type]
        },
    )
    daemon = build(settings, adapters={("fake", "brand"): fake_adapter}, classify=fake_classify, engine=engine)
    yield daemon
    daemon.close()


def _rows(daemon: Daemon) -> list[HelpdeskDelivery]:
    with transaction(daemon.sessions) as session:
        return list(session.exec(select(HelpdeskDelivery).order_by(HelpdeskDelivery.id)))


def test_each_complaint_is_delivered_once_signed_and_without_reach(
    hooked: Daemon, fake_adapter: FakeAdapter, webhook_receiver: WebhookReceiver
) -> None:
    fake_adapter.mentions = [
        mention("1", "my router is broken again"),
        mention("2", "love the new app, thanks!"),
        mention("3", "charged twice, I want a refund", author_handle="famous_person"),
    ]
    hooked.poll_all()
    assert hooked.deliver() == 2
    assert hooked.deliver() == 0  # nothing twice
    created = webhook_receiver.of_type("ticket.created")
    assert sorted(d.body["data"]["ticket"]["text"] for d in created) == [
        "charged twice, I want a refund",
        "my router is broken again",
    ]
    for d in created:
        ticket = d.body["data"]["ticket"]
        assert set(ticket) == TICKET_KEYS  # nothing else can ride along
        assert ticket["customer"].startswith("customer-")  # blind triage: a pseudonym, not the handle
        assert "famous_person" not in d.raw.decode()
        assert not any(word in d.raw.decode().lower() for word in REACH_WORDS), d.raw
        assert d.body["type"] == "ticket.created" and "timestamp" in d.body
    assert {r.state for r in _rows(hooked)} == {DeliveryState.FILED}


def test_a_refusing_receiver_is_retried_within_a_minute_with_the_same_webhook_id(
    hooked: Daemon, fake_adapter: FakeAdapter, webhook_receiver: WebhookReceiver
) -> None:
    fake_adapter.mentions = [mention("1", "my router is broken")]
    hooked.poll_all()
    webhook_receiver.fail_next = [503]
    assert hooked.deliver() == 0
    (row,) = _rows(hooked)
    assert row.state == DeliveryState.UNCERTAIN and "503" in (row.last_error or "")
    assert row.next_attempt_at - utcnow() < timedelta(seconds=60)
    assert hooked.deliver() == 0  # not due yet
    later = deliver_due(
        hooked.helpdesks,
        sessions=hooked.sessions,
        policy=hooked.filing_policy,
        owner="x",
        now=utcnow() + timedelta(minutes=1),
    )
    assert later == 1
    ids = [msg_id for msg_id, _ in webhook_receiver.attempts]
    assert len(ids) == 2 and ids[0] == ids[1]  # the same webhook-id on the retry
    assert [status for _, status in webhook_receiver.attempts] == [503, 200]


def test_a_crash_after_sending_resends_with_the_same_id_and_the_receiver_keeps_one(
    hooked: Daemon, fake_adapter: FakeAdapter, webhook_receiver: WebhookReceiver
) -> None:
    fake_adapter.mentions = [mention("1", "my router is broken")]
    hooked.poll_all()
    real = hooked.helpdesks["hooks"]

    with pytest.raises(SimulatedCrash):
        deliver_due(
            {"hooks": KilledOnCreate(real, nth=1, at_kill=real.create)},
            sessions=hooked.sessions,
            policy=hooked.filing_policy,
            owner="gone",
        )
    assert _rows(hooked)[0].state == DeliveryState.UNCERTAIN
    restarted = deliver_due(
        hooked.helpdesks,
        sessions=hooked.sessions,
        policy=hooked.filing_policy,
        owner="new",
        now=utcnow() + timedelta(minutes=1),
    )
    assert restarted == 1
    assert len(webhook_receiver.attempts) == 2 and len(webhook_receiver.deliveries) == 1


def test_details_and_status_changes_become_events(
    hooked: Daemon, fake_adapter: FakeAdapter, webhook_receiver: WebhookReceiver
) -> None:
    fake_adapter.mentions = [mention("1", "my router is broken")]
    hooked.poll_all()
    hooked.deliver()
    with transaction(hooked.sessions) as session:
        ticket = session.exec(select(Ticket)).one()
        add_customer_details(
            session=session,
            ticket=ticket,
            order_number="A-17",
            details="since Monday",
            email="pat@example.com",
            consent=True,
        )
        set_status(session=session, ticket=ticket, status="solved", actor="alex")
    hooked.deliver()
    (details,) = webhook_receiver.of_type("ticket.details_added")
    event = details.body["data"]["event"]
    assert event["source"] == "link_page" and "since Monday" in event["text"] and event["email"] == "pat@example.com"
    (status,) = webhook_receiver.of_type("ticket.status_changed")
    assert status.body["data"]["event"]["status"] == "solved"
    hooked.deliver()
    assert len(webhook_receiver.deliveries) == 3  # each event once


def test_a_permanent_refusal_is_recorded_with_the_reason(
    hooked: Daemon, fake_adapter: FakeAdapter, webhook_receiver: WebhookReceiver
) -> None:
    fake_adapter.mentions = [mention("1", "my router is broken")]
    hooked.poll_all()
    hooked.helpdesks["hooks"] = WebhookHelpdesk(
        "hooks", url=webhook_receiver.url, secret="whsec_" + "A" * 44, events=["ticket.created"]
    )  # the wrong secret: the receiver answers 401
    hooked.deliver()
    (row,) = _rows(hooked)
    assert row.state == DeliveryState.FAILED and "401" in (row.last_error or "")
    with transaction(hooked.sessions) as session:
        notes = [e.body for e in session.exec(select(TicketEntry)) if "refused" in e.body]
    assert notes and "401" in notes[0]
    assert webhook_receiver.deliveries == []


def test_a_refusal_shows_in_healthz_and_on_the_agents_ticket_view(
    hooked: Daemon, fake_adapter: FakeAdapter, webhook_receiver: WebhookReceiver
) -> None:
    from fastapi.testclient import TestClient

    from fairdesk.ticketing.agents import add_agent

    fake_adapter.mentions = [mention("1", "my router is broken")]
    hooked.poll_all()
    webhook_receiver.fail_next = [410]
    hooked.deliver()
    with transaction(hooked.sessions) as session:
        add_agent(session=session, name="alex", password="correct horse battery")
        ticket_id = session.exec(select(Ticket.id)).one()
    with TestClient(hooked.web_app) as client:
        health = client.get("/healthz").json()
        page = client.get("/agent/login")
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        client.post("/agent/login", data={"csrf": csrf, "name": "alex", "password": "correct horse battery"})
        view = client.get(f"/agent/tickets/{ticket_id}").text
    assert health["status"] == "degraded"
    assert any("helpdesk hooks" in p and "410" in p for p in health["problems"]), health["problems"]
    assert health["helpdesks"][0]["failed"] == 1
    assert "In hooks" in view and "refused" in view and "410" in view


def test_a_follow_up_post_in_the_thread_reaches_the_same_helpdesk_ticket(
    hooked: Daemon, fake_adapter: FakeAdapter, webhook_receiver: WebhookReceiver
) -> None:
    fake_adapter.mentions = [mention("1", "my router is broken")]
    hooked.poll_all()
    hooked.deliver()
    fake_adapter.mentions.append(
        mention("2", "still broken this morning", author_id="author-1", conversation_id="1", reply_to_id="1")
    )
    hooked.poll_all()
    hooked.deliver()
    (created,) = webhook_receiver.of_type("ticket.created")
    (followup,) = webhook_receiver.of_type("ticket.details_added")
    assert followup.body["data"]["ticket"]["ref"] == created.body["data"]["ticket"]["ref"]
    assert followup.body["data"]["event"] == {**followup.body["data"]["event"], "source": "post"}
    assert followup.body["data"]["event"]["text"] == "still broken this morning"
