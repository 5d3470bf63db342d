"""Posts deleted at the source lose their text here too; the ticket and its ledger entry stay."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import select

from fairdesk.app import Daemon
from fairdesk.config.settings import SampleAccount
from fairdesk.listener.base import MentionKind
from fairdesk.ticketing.db import transaction
from fairdesk.ticketing.models import LedgerEntry, Ticket, TicketEntry
from tests.support import FakeAdapter, mention


@dataclass
class DeletingAdapter(FakeAdapter):
    gone: set[str] = field(default_factory=set)
    asked: list[list[str]] = field(default_factory=list)

    def deleted_posts(self, post_ids: list[str]) -> set[str]:
        self.asked.append(post_ids)
        return self.gone & set(post_ids)


def test_deleted_posts_have_their_text_removed(daemon: Daemon) -> None:
    adapter = DeletingAdapter(
        mentions=[
            mention("1", "broken, my address is 1 Elm St", author_id="a"),
            mention("2", "still broken", author_id="a", conversation_id="1", reply_to_id="1", kind=MentionKind.REPLY),
            mention("3", "broken too", author_id="b"),
        ]
    )
    daemon.adapters = {("fake", "brand"): adapter}
    daemon.poll_all()
    adapter.gone = {"1", "2"}
    assert daemon.sweep_deleted() == 2

    with transaction(daemon.sessions) as session:
        tickets = {t.post_id: t for t in session.exec(select(Ticket))}
        ledger = {e.post_id: e for e in session.exec(select(LedgerEntry))}
        entries = list(session.exec(select(TicketEntry).where(TicketEntry.post_id == "2")))
    assert tickets["1"].deleted_at_source and tickets["1"].body == "" and "Elm" not in tickets["1"].subject
    assert ledger["1"].text == "" and ledger["2"].text == "" and ledger["1"].outcome == "ticketed"
    assert entries[0].body == "(deleted by its author)"
    assert tickets["3"].body == "broken too" and not tickets["3"].deleted_at_source
    # Already-blanked posts are not asked about again.
    adapter.asked.clear()
    daemon.sweep_deleted()
    assert adapter.asked == [["3"]]


def test_adapters_without_deletion_checks_are_left_alone(daemon: Daemon, fake_adapter: FakeAdapter) -> None:
    fake_adapter.mentions = [mention("1", "broken")]
    daemon.poll_all()
    assert daemon.sweep_deleted() == 0


def test_scheduler_runs_one_non_overlapping_job_per_account_and_the_reply_job(daemon: Daemon) -> None:
    daemon.settings.sample = {"a": SampleAccount(poll_seconds=7), "b": SampleAccount(poll_seconds=9)}
    daemon.adapters = {
        ("sample", "a"): FakeAdapter(platform="sample", account="a"),
        ("sample", "b"): DeletingAdapter(platform="sample", account="b"),
    }
    scheduler = daemon.start_scheduler()
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == {"poll sample/a", "poll sample/b", "heartbeat", "deletion sweep sample/b"}
        assert set(daemon.loops) == {"replies"}  # its own loop, woken by intake
        assert jobs["poll sample/a"].trigger.interval.total_seconds() == 7
        assert jobs["poll sample/b"].trigger.interval.total_seconds() == 9
        assert all(job.max_instances == 1 and job.coalesce for job in jobs.values())
    finally:
        daemon.stop_jobs()
