"""The reply outbox: intent before sending, result after; never two replies to one post, across crashes."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import select

from fairdesk.app import Daemon
from fairdesk.jobs.replies import send_due_replies
from fairdesk.listener.base import PermanentError, RateLimited, TransientError
from fairdesk.ticketing.db import transaction
from fairdesk.ticketing.leases import LEASE
from fairdesk.ticketing.models import Outbox, ReplyState, Ticket, utcnow
from fairdesk.ticketing.tokens import hash_token
from tests.support import FakeAdapter, SimulatedCrash, mention

LINK = re.compile(r"http://127\.0\.0\.1:8000/t/([A-Za-z0-9_-]+)")


def _outbox(daemon: Daemon) -> list[Outbox]:
    with transaction(daemon.sessions) as session:
        return list(session.exec(select(Outbox).order_by(Outbox.id)))


def _restart(daemon: Daemon, adapter: FakeAdapter, *, later: timedelta = LEASE * 2) -> int:
    """Another process, after the crashed one's claim expired."""
    return send_due_replies(
        {("fake", "brand"): adapter},
        sessions=daemon.sessions,
        policy=daemon.reply_policy,
        owner="restarted",
        now=utcnow() + later,
    )


def test_reply_carries_the_template_and_a_link_whose_token_is_stored_only_as_a_hash(
    daemon: Daemon, fake_adapter: FakeAdapter
) -> None:
    fake_adapter.mentions = [mention("1", "broken router")]
    daemon.poll_all()
    assert daemon.send_replies() == 1

    (reply,) = fake_adapter.posted
    token = LINK.search(reply.text).group(1)  # type: ignore[union-attr]
    assert len(token) >= 22  # 16 random bytes, base64url
    assert reply.text.startswith("Thanks for telling us. We have opened ticket FD-000001")
    with transaction(daemon.sessions) as session:
        ticket = session.exec(select(Ticket)).one()
    stored = [str(v) for v in ticket.model_dump().values()] + [str(v) for v in _outbox(daemon)[0].model_dump().values()]
    assert ticket.token_hash == hash_token(token)
    assert not any(token in value for value in stored)


def test_crash_between_recording_and_sending_does_not_double_post(daemon: Daemon, fake_adapter: FakeAdapter) -> None:
    fake_adapter.mentions = [mention("1", "broken")]
    daemon.poll_all()
    fake_adapter.fail_sends = [SimulatedCrash("killed before the send")]
    with pytest.raises(SimulatedCrash):
        daemon.send_replies()
    assert _outbox(daemon)[0].state == ReplyState.SENDING

    assert _restart(daemon, fake_adapter, later=timedelta(0)) == 0  # the claim is still live: nobody touches it
    assert _restart(daemon, fake_adapter) == 1
    assert _restart(daemon, fake_adapter, later=LEASE * 4) == 0
    assert len(fake_adapter.replies_to("1")) == 1
    assert _outbox(daemon)[0].state == ReplyState.SENT


def test_crash_after_posting_but_before_recording_is_settled_without_a_second_post(
    daemon: Daemon, fake_adapter: FakeAdapter
) -> None:
    fake_adapter.mentions = [mention("1", "broken")]
    daemon.poll_all()
    fake_adapter.crash_after_send = True
    with pytest.raises(SimulatedCrash):
        daemon.send_replies()
    fake_adapter.crash_after_send = False

    assert _restart(daemon, fake_adapter) == 0
    assert len(fake_adapter.replies_to("1")) == 1
    row = _outbox(daemon)[0]
    assert row.state == ReplyState.SENT and row.remote_id == "r-1"
    # The link that went out still opens the ticket: its token hash was kept.
    token = LINK.search(fake_adapter.posted[0].text).group(1)  # type: ignore[union-attr]
    with transaction(daemon.sessions) as session:
        assert session.exec(select(Ticket)).one().token_hash == hash_token(token)


def test_transient_failures_back_off_then_fail_for_good(daemon: Daemon, fake_adapter: FakeAdapter) -> None:
    fake_adapter.mentions = [mention("1", "broken")]
    daemon.poll_all()
    attempts = daemon.settings.reply.max_attempts
    fake_adapter.fail_sends = [TransientError("503")] * attempts
    daemon.send_replies()
    first = _outbox(daemon)[0]
    assert first.state == ReplyState.UNCERTAIN and first.attempts == 1
    assert first.next_attempt_at > utcnow() + timedelta(seconds=20)  # backoff, not an immediate retry
    assert daemon.send_replies() == 0  # not due yet

    for n in range(2, attempts + 1):
        _restart(daemon, fake_adapter, later=timedelta(days=n))
    row = _outbox(daemon)[0]
    assert row.state == ReplyState.FAILED and row.attempts == attempts
    assert "gave up after" in (row.last_error or "")
    assert fake_adapter.posted == []


def test_a_timeout_that_posted_anyway_is_found_before_any_resend(daemon: Daemon, fake_adapter: FakeAdapter) -> None:
    fake_adapter.mentions = [mention("1", "broken")]
    daemon.poll_all()
    fake_adapter.crash_after_send = True
    original = fake_adapter.send_reply

    def posted_then_timed_out(reply):  # type: ignore[no-untyped-def]
        try:
            return original(reply)
        except SimulatedCrash:
            raise TransientError("read timed out") from None

    fake_adapter.send_reply = posted_then_timed_out  # type: ignore[method-assign]
    daemon.send_replies()
    assert _outbox(daemon)[0].state == ReplyState.UNCERTAIN
    fake_adapter.crash_after_send = False
    assert _restart(daemon, fake_adapter, later=timedelta(days=1)) == 0
    assert len(fake_adapter.replies_to("1")) == 1 and _outbox(daemon)[0].state == ReplyState.SENT


def test_a_permanent_refusal_is_recorded_and_the_ticket_stays(daemon: Daemon, fake_adapter: FakeAdapter) -> None:
    fake_adapter.mentions = [mention("1", "broken")]
    daemon.poll_all()
    fake_adapter.fail_sends = [PermanentError("403 You are not permitted to reply")]
    daemon.send_replies()
    row = _outbox(daemon)[0]
    assert row.state == ReplyState.FAILED and "not permitted" in (row.last_error or "")
    with transaction(daemon.sessions) as session:
        assert session.exec(select(Ticket)).one().post_id == "1"


def test_rate_limited_send_waits_and_does_not_use_up_an_attempt(daemon: Daemon, fake_adapter: FakeAdapter) -> None:
    fake_adapter.mentions = [mention("1", "broken")]
    daemon.poll_all()
    fake_adapter.fail_sends = [RateLimited("429", retry_after=900)]
    daemon.send_replies()
    row = _outbox(daemon)[0]
    assert row.state == ReplyState.PENDING and row.attempts == 0
    assert row.next_attempt_at > utcnow() + timedelta(seconds=800)
