"""Leases that die with their daemon: a killed daemon stalls neither polling nor replies after a restart."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta
from threading import Barrier, Thread

import pytest
from sqlmodel import select

from fairdesk.app import Daemon
from fairdesk.jobs.poll import poll_once
from fairdesk.jobs.replies import send_due_replies
from fairdesk.ticketing.db import transaction
from fairdesk.ticketing.leases import LEASE, daemon_id, is_dead, renew
from fairdesk.ticketing.models import AccountState, Outbox, ReplyState, utcnow
from tests.support import FakeAdapter, SimulatedCrash, fake_classify, mention

POLL_SECONDS = 2.0  # the sample feed's default interval: the tightest bound a restart must meet
RESTART_BOUND = timedelta(seconds=3 * POLL_SECONDS + 10)
REMOTE_DEAD = "other-host/4026531836/4242/abcdef"  # a daemon on another host: its death is known only by time


def _dead_local_owner() -> str:
    """The name a daemon of this host had, whose process has exited (as after a SIGKILL)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    host, ns, _pid, rand = daemon_id().split("/")
    return f"{host}/{ns}/{child.pid}/{rand}"


def _poll(daemon: Daemon, adapter: FakeAdapter, owner: str, later: timedelta = timedelta(0)):  # type: ignore[no-untyped-def]
    return poll_once(adapter, classify=fake_classify, sessions=daemon.sessions, owner=owner, now=utcnow() + later)


def _send(daemon: Daemon, adapter: FakeAdapter, owner: str, later: timedelta = timedelta(0)) -> int:
    return send_due_replies(
        {("fake", "brand"): adapter},
        sessions=daemon.sessions,
        policy=daemon.reply_policy,
        owner=owner,
        now=utcnow() + later,
    )


def test_owner_names_tell_a_dead_local_daemon_from_a_live_or_remote_one() -> None:
    assert is_dead(_dead_local_owner())
    assert not is_dead(daemon_id())  # this very process
    assert not is_dead(REMOTE_DEAD) and not is_dead("daemon-1") and not is_dead(None)


@pytest.mark.parametrize("killed", ["on this host", "on another host"])
def test_a_daemon_killed_mid_poll_does_not_stall_the_restarted_one(
    daemon: Daemon, fake_adapter: FakeAdapter, killed: str
) -> None:
    dead = _dead_local_owner() if killed == "on this host" else REMOTE_DEAD
    fake_adapter.mentions = [mention("1", "broken")]
    fake_adapter.fetch_errors = [SimulatedCrash("SIGKILL inside fetch")]  # type: ignore[list-item]
    with pytest.raises(SimulatedCrash):
        _poll(daemon, fake_adapter, dead)
    with transaction(daemon.sessions) as session:
        assert session.get(AccountState, ("fake", "brand")).lease_owner == dead  # type: ignore[union-attr]

    # A dead daemon of this host is known dead at once; one elsewhere holds its lease only until it runs out.
    restart_after = timedelta(0) if killed == "on this host" else RESTART_BOUND
    result = _poll(daemon, fake_adapter, "restarted", restart_after)
    assert result.skipped_run is None and result.new == 1


def test_a_live_daemons_lease_is_renewed_by_its_heartbeat_and_respected(
    daemon: Daemon, fake_adapter: FakeAdapter
) -> None:
    live = daemon_id()  # alive: this process
    fake_adapter.fetch_errors = [SimulatedCrash("stop while holding the lease")]  # type: ignore[list-item]
    with pytest.raises(SimulatedCrash):
        _poll(daemon, fake_adapter, live)
    assert _poll(daemon, fake_adapter, "other").skipped_run == "another daemon is polling this account"
    with transaction(daemon.sessions) as session:
        renew(session, live, utcnow() + LEASE * 0.8)
    assert _poll(daemon, fake_adapter, "other", LEASE * 1.2).skipped_run is not None  # renewed: still held
    assert _poll(daemon, fake_adapter, "other", LEASE * 2).skipped_run is None  # no heartbeat: free


@pytest.mark.parametrize("killed", ["on this host", "on another host"])
def test_a_daemon_killed_mid_send_holds_only_the_reply_it_was_sending(
    daemon: Daemon, fake_adapter: FakeAdapter, killed: str
) -> None:
    dead = _dead_local_owner() if killed == "on this host" else REMOTE_DEAD
    fake_adapter.mentions = [mention(str(i), "broken") for i in range(1, 26)]
    daemon.poll_all()
    fake_adapter.crash_after_send = True  # posts, then dies before recording it
    with pytest.raises(SimulatedCrash):
        _send(daemon, fake_adapter, dead)
    fake_adapter.crash_after_send = False

    # The restarted daemon sends the 24 never-attempted replies at once.
    sent_now = _send(daemon, fake_adapter, "restarted")
    if killed == "on this host":
        assert sent_now == 24  # and the one in flight was settled by asking the platform, not sent again
    else:
        assert sent_now == 24
        in_flight = [o for o in _outbox(daemon) if o.state == ReplyState.SENDING]
        assert len(in_flight) == 1 and in_flight[0].claimed_by == dead
        assert _send(daemon, fake_adapter, "restarted", LEASE + timedelta(seconds=1)) == 0  # settled: it had posted
    assert {o.state for o in _outbox(daemon)} == {ReplyState.SENT}
    assert all(len(fake_adapter.replies_to(str(i))) == 1 for i in range(1, 26))


def _outbox(daemon: Daemon) -> list[Outbox]:
    with transaction(daemon.sessions) as session:
        return list(session.exec(select(Outbox).order_by(Outbox.id)))


class _SlowAdapter(FakeAdapter):
    """Takes a platform's time per send (20 ms, sleeping without the GIL), so that several daemons' claims really
    interleave even on a loaded machine, where 3 ms let one daemon's turn never come (seen once in CI on SQLite)."""

    def send_reply(self, reply):  # type: ignore[no-untyped-def]
        time.sleep(0.02)
        return super().send_reply(reply)


def test_four_daemons_racing_over_many_replies_post_each_once_and_all_take_part(daemon: Daemon) -> None:
    adapter = _SlowAdapter(mentions=[mention(str(i), "broken") for i in range(1, 61)])
    daemon.adapters = {("fake", "brand"): adapter}
    daemon.poll_all()
    start = Barrier(4)
    sent: dict[str, int] = {}

    def worker(owner: str) -> None:
        start.wait()
        sent[owner] = _send(daemon, adapter, owner)

    threads = [Thread(target=worker, args=(f"daemon-{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    posted = sorted(r.in_reply_to.post_id for r in adapter.posted)
    assert posted == sorted(str(i) for i in range(1, 61))  # each once
    assert sum(sent.values()) == 60 and all(n > 0 for n in sent.values()), sent  # they really raced
    assert {o.state for o in _outbox(daemon)} == {ReplyState.SENT}
