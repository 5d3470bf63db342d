"""poll_once: every fetched mention gets exactly one recorded outcome, at most one ticket and one reply per post."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlmodel import select

from fairdesk.app import Daemon
from fairdesk.jobs.poll import poll_once
from fairdesk.listener.base import FoundBy, MentionKind, RateLimited, TransientError
from fairdesk.ticketing.db import transaction
from fairdesk.ticketing.models import AccountState, LedgerEntry, Outbox, ReplyState, Ticket, TicketEntry
from tests.support import FakeAdapter, fake_classify, mention


def _rows(daemon: Daemon, model: type) -> list:
    with transaction(daemon.sessions) as session:
        return list(session.exec(select(model)))


def test_every_fetched_mention_gets_one_outcome(daemon: Daemon, fake_adapter: FakeAdapter) -> None:
    fake_adapter.mentions = [
        mention("1", "my router is broken again"),
        mention("2", "love the new app, thanks!"),
        mention("3", "RT @brand: outage fixed", kind=MentionKind.REPOST),
        mention("4", "service is down everywhere", from_account=True),
        mention(
            "5",
            "still broken after the fix",
            author_id="author-1",
            conversation_id="1",
            reply_to_id="1",
            kind=MentionKind.REPLY,
        ),
        mention("6", "competitor is down, never again", addresses_account=False, found_by=FoundBy.SEARCH),
    ]
    result = daemon.poll("fake", "brand")

    ledger = {e.post_id: (e.outcome, e.reason) for e in _rows(daemon, LedgerEntry)}
    assert ledger == {
        "1": ("ticketed", None),
        "2": ("skipped", "not_complaint"),
        "3": ("skipped", "repost"),
        "4": ("skipped", "own_post"),
        "5": ("appended", None),
        "6": ("ticketed", None),
    }
    assert result.new == 6 and result.replies_queued == 1
    tickets = _rows(daemon, Ticket)
    assert sorted(t.post_id for t in tickets) == ["1", "6"]
    appended = [e for e in _rows(daemon, TicketEntry) if e.post_id == "5"]
    assert len(appended) == 1 and appended[0].ticket_id == next(t.id for t in tickets if t.post_id == "1")
    # Only the post that @mentions the brand is replied to; the keyword hit is not.
    assert [o.in_reply_to for o in _rows(daemon, Outbox)] == ["1"]


def test_a_post_the_model_cannot_judge_is_filed_for_triage(daemon: Daemon, fake_adapter: FakeAdapter) -> None:
    # The model's guess for a link-only post is "not a complaint", but nobody has read it yet: a person triages it.
    fake_adapter.mentions = [mention("1", "@brand https://t.co/photo"), mention("2", "@brand thanks!")]
    daemon.poll("fake", "brand")
    ledger = {e.post_id: (e.outcome, e.label) for e in _rows(daemon, LedgerEntry)}
    assert ledger == {"1": ("ticketed", "not_complaint"), "2": ("skipped", "not_complaint")}
    (ticket,) = _rows(daemon, Ticket)
    assert (ticket.post_id, ticket.triage_reason, ticket.severity) == ("1", "empty", None)
    assert [o.in_reply_to for o in _rows(daemon, Outbox)] == ["1"]


def test_the_same_batch_twice_makes_no_duplicate_ticket_or_reply(daemon: Daemon, fake_adapter: FakeAdapter) -> None:
    fake_adapter.mentions = [mention(str(i), "still broken, waiting for a refund") for i in range(1, 6)]
    daemon.poll("fake", "brand")
    daemon.send_replies()
    # A restart that lost the cursor fetches the same posts again.
    with transaction(daemon.sessions) as session:
        state = session.get(AccountState, ("fake", "brand"))
        state.cursor = None
        session.add(state)
    again = daemon.poll("fake", "brand")
    daemon.send_replies()

    assert again.fetched == 5 and again.new == 0
    assert len(_rows(daemon, Ticket)) == 5
    assert len(_rows(daemon, LedgerEntry)) == 5
    assert len(_rows(daemon, Outbox)) == 5
    assert Counter(r.in_reply_to.post_id for r in fake_adapter.posted) == {str(i): 1 for i in range(1, 6)}


def test_cursor_advances_with_the_batch_and_survives_a_restart(daemon: Daemon, fake_adapter: FakeAdapter) -> None:
    fake_adapter.mentions = [mention(str(i), "broken") for i in range(1, 8)]
    fake_adapter.per_fetch = 3
    daemon.poll("fake", "brand")
    daemon.poll("fake", "brand")
    restarted = FakeAdapter(mentions=fake_adapter.mentions, per_fetch=3)
    poll_once(restarted, classify=fake_classify, sessions=daemon.sessions, owner="another-process")
    assert restarted.fetches == ["6"]
    assert len(_rows(daemon, LedgerEntry)) == 7


def test_a_failed_fetch_keeps_the_cursor_and_records_the_error(daemon: Daemon, fake_adapter: FakeAdapter) -> None:
    fake_adapter.mentions = [mention("1", "broken")]
    fake_adapter.fetch_errors = [TransientError("HTTP 503")]
    failed = daemon.poll("fake", "brand")
    assert failed.error == "TransientError: HTTP 503"
    state = _rows(daemon, AccountState)[0]
    assert state.cursor is None and state.last_error == "TransientError: HTTP 503"

    ok = daemon.poll("fake", "brand")
    assert ok.new == 1
    state = _rows(daemon, AccountState)[0]
    assert state.cursor == "1" and state.last_error is None and state.last_success_at is not None


def test_rate_limit_holds_the_account_until_the_reset(daemon: Daemon, fake_adapter: FakeAdapter) -> None:
    fake_adapter.mentions = [mention("1", "broken")]
    fake_adapter.fetch_errors = [RateLimited("429", retry_after=600)]
    daemon.poll("fake", "brand")
    held = daemon.poll("fake", "brand")
    assert held.skipped_run == "another daemon is polling this account"
    assert fake_adapter.fetches == [None]  # no second call into the limit


def test_a_second_daemon_does_not_poll_an_account_that_is_being_polled(
    daemon: Daemon, fake_adapter: FakeAdapter
) -> None:
    fake_adapter.mentions = [mention("1", "broken")]
    other = FakeAdapter(mentions=fake_adapter.mentions)

    def fetch_while_other_daemon_polls(since: str | None):  # type: ignore[no-untyped-def]
        result = poll_once(other, classify=fake_classify, sessions=daemon.sessions, owner="daemon-b")
        assert result.skipped_run == "another daemon is polling this account"
        return FakeAdapter.fetch(fake_adapter, since)

    fake_adapter.fetch = fetch_while_other_daemon_polls  # type: ignore[method-assign]
    assert daemon.poll("fake", "brand").new == 1
    assert other.fetches == []


def test_opt_out_cancels_pending_replies_and_stops_future_ones(daemon: Daemon, fake_adapter: FakeAdapter) -> None:
    fake_adapter.mentions = [
        mention("1", "broken again", author_id="a"),
        mention("2", "@brand STOP", author_id="a"),
        mention("300", "still broken", author_id="a"),  # 5 h later, past the incidents window: a ticket of its own
    ]
    daemon.poll("fake", "brand")
    daemon.send_replies()
    assert fake_adapter.posted == []
    states = {o.in_reply_to: o.state for o in _rows(daemon, Outbox)}
    assert states == {"1": ReplyState.CANCELLED}
    assert {e.post_id: e.reason for e in _rows(daemon, LedgerEntry)}["2"] == "opted_out"
    assert len(_rows(daemon, Ticket)) == 2  # they still get tickets; they just get no public reply


def test_a_reply_from_someone_else_in_the_thread_gets_its_own_ticket(daemon: Daemon, fake_adapter: FakeAdapter) -> None:
    fake_adapter.mentions = [
        mention("1", "broken", author_id="a"),
        mention("2", "same here, still broken", author_id="b", conversation_id="1", reply_to_id="1"),
    ]
    daemon.poll("fake", "brand")
    assert sorted(t.post_id for t in _rows(daemon, Ticket)) == ["1", "2"]


def test_hostile_text_is_stored_as_given(daemon: Daemon, fake_adapter: FakeAdapter) -> None:
    hostile = "broken <script>alert('x')</script> '; DROP TABLE ticket;-- \x07\x1b[31m z\u0336a\u0337l\u0338g\u0335o"
    fake_adapter.mentions = [mention("1", hostile), mention("2", "broken\x00nul")]
    daemon.poll("fake", "brand")
    bodies = {t.post_id: t.body for t in _rows(daemon, Ticket)}
    assert bodies["1"] == hostile
    assert bodies["2"] == "broken\ufffdnul"  # NUL cannot be stored in PostgreSQL text; nothing else changes


def test_a_crash_in_classification_releases_the_account_and_loses_nothing(
    daemon: Daemon, fake_adapter: FakeAdapter
) -> None:
    fake_adapter.mentions = [mention("1", "broken")]

    def broken_classifier(texts):  # type: ignore[no-untyped-def]
        raise RuntimeError("model file corrupt")

    with pytest.raises(RuntimeError):
        poll_once(fake_adapter, classify=broken_classifier, sessions=daemon.sessions, owner="x")
    assert _rows(daemon, LedgerEntry) == []
    assert daemon.poll("fake", "brand").new == 1  # not locked out by the failed run, and the post was not lost


def test_the_poll_log_line_names_outcomes_as_words(
    daemon: Daemon, fake_adapter: FakeAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    fake_adapter.mentions = [mention("1", "my router is broken"), mention("2", "thanks, all good")]
    with caplog.at_level("INFO", logger="fairdesk.jobs.poll"):
        daemon.poll_all()
    (line,) = [r.getMessage() for r in caplog.records if "poll:" in r.getMessage()]
    assert line == "fake/brand poll: 2 new (1 skipped, 1 ticketed)", line
