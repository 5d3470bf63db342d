"""The running daemon's jobs: replies leave as soon as intake queues them; failures are remembered per job."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlmodel import select

from fairdesk.app import Daemon
from fairdesk.jobs import JobBoard, WakeableLoop
from fairdesk.ticketing.db import transaction
from fairdesk.ticketing.models import LedgerEntry, Outbox
from tests.support import FakeAdapter, mention


def _wait_for(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def test_a_reply_leaves_within_a_second_of_the_poll_that_found_its_post(
    daemon: Daemon, fake_adapter: FakeAdapter
) -> None:
    daemon.settings.reply.interval_seconds = 120  # only being woken by intake can explain a quick reply
    fake_adapter.mentions = [mention("1", "my router is broken")]
    daemon.start_scheduler()
    try:
        assert _wait_for(lambda: bool(fake_adapter.posted)), "the reply waited for the reply job's next tick"
    finally:
        daemon.stop_jobs()
    with transaction(daemon.sessions) as session:
        fetched = session.exec(select(LedgerEntry.fetched_at)).one()
        sent = session.exec(select(Outbox.sent_at)).one()
    assert sent is not None and (sent - fetched).total_seconds() < 1.0


def test_a_wake_during_a_run_makes_another_run_follow_at_once() -> None:
    runs: list[float] = []
    loop: WakeableLoop

    def job() -> None:
        runs.append(time.monotonic())
        if len(runs) == 1:
            loop.wake()  # work queued while this run is still going

    loop = WakeableLoop("test", job, interval=60)
    loop.start()
    try:
        assert _wait_for(lambda: len(runs) >= 2, timeout=5)
    finally:
        loop.stop(timeout=5)
    assert runs[1] - runs[0] < 1.0


def test_the_board_counts_consecutive_failures_and_recovery() -> None:
    board = JobBoard()
    outcomes = iter([OSError("disk full"), OSError("disk full"), None])

    def job() -> None:
        exc = next(outcomes)
        if exc is not None:
            raise exc

    board.run("poll x/acme", job)
    (first,) = board.snapshot()
    assert not first["failing"] and first["last_error"] == "OSError: disk full"
    board.run("poll x/acme", job)
    assert board.snapshot()[0]["failing"] and board.snapshot()[0]["consecutive_failures"] == 2
    board.run("poll x/acme", job)
    (after,) = board.snapshot()
    assert not after["failing"] and after["last_ok_at"] is not None
