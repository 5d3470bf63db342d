"""The daemon's work: its jobs (poll, reply, file in helpdesks, sync, sweep, heartbeat), scheduled and stopped."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from fairdesk.config.settings import Settings
from fairdesk.helpdesk.base import Helpdesk
from fairdesk.jobs import JobBoard, WakeableLoop
from fairdesk.jobs.deletions import sweep_deleted
from fairdesk.jobs.deliveries import FilingPolicy, deliver_due
from fairdesk.jobs.poll import PollResult, poll_once
from fairdesk.jobs.replies import ReplyPolicy, send_due_replies
from fairdesk.jobs.sync import sync_statuses
from fairdesk.listener.base import Adapter, ChecksDeletions
from fairdesk.metrics import Metrics, MetricsServer
from fairdesk.ticketing.db import SessionFactory, transaction
from fairdesk.ticketing.leases import HEARTBEAT_SECONDS, release_all, renew
from fairdesk.ticketing.models import utcnow
from fairdesk.ticketing.priority import Verdict

logger = logging.getLogger(__name__)

Classify = Callable[[Sequence[str]], Sequence[Verdict]]
DELETION_SWEEP_SECONDS = 15 * 60
DEFAULT_POLL_SECONDS = 60.0
DELIVERY_SECONDS = 5.0  # the delivery loop's tick; intake wakes it at once when it opens a ticket
DEFAULT_SYNC_SECONDS = 30.0


@dataclass
class Daemon:
    settings: Settings
    engine: Engine
    sessions: SessionFactory
    classify: Classify
    adapters: dict[tuple[str, str], Adapter]
    owner: str
    helpdesks: dict[str, Helpdesk] = field(default_factory=dict)
    web_app: Any = None
    scheduler: BackgroundScheduler | None = None
    board: JobBoard = field(default_factory=JobBoard)
    loops: dict[str, WakeableLoop] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)
    metrics_server: MetricsServer | None = None

    @property
    def reply_policy(self) -> ReplyPolicy:
        r = self.settings.reply
        return ReplyPolicy(r.template, self.settings.public_url, r.max_attempts, r.backoff_seconds)

    @property
    def filing_policy(self) -> FilingPolicy:
        retry = {name: h.retry_seconds for name, h in self.settings.helpdesk.items()}
        return FilingPolicy(self.settings.public_url, self.settings.web.blind_triage, retry)

    def poll_seconds(self) -> dict[tuple[str, str], float]:
        intervals = {(p, n): float(a.poll_seconds) for p, n, a in self.settings.accounts()}
        return {key: intervals.get(key, DEFAULT_POLL_SECONDS) for key in self.adapters}

    def wake(self, loop: str) -> None:
        """Run a loop's job now rather than at its next tick (e.g. a reply or a ticket was just queued)."""
        if loop in self.loops:
            self.loops[loop].wake()

    def poll(self, platform: str, account: str) -> PollResult:
        started = time.perf_counter()
        try:
            result = poll_once(
                self.adapters[(platform, account)],
                classify=self.metrics.timed_classify(self.classify),
                sessions=self.sessions,
                owner=self.owner,
            )
        except Exception:
            self.metrics.polls.labels(platform, account, "error").inc()
            raise
        self._count_poll(result, time.perf_counter() - started)
        if result.replies_queued:
            self.wake("replies")  # the reply leaves now, not at the next tick
        if result.new:
            self.wake("deliveries")
        return result

    def _count_poll(self, result: PollResult, seconds: float) -> None:
        m, key = self.metrics, (result.platform, result.account)
        m.poll_seconds.labels(*key).observe(seconds)
        if result.rate_limited_for is not None:
            m.rate_limit_waits.labels(*key).inc()
            m.rate_limit_wait_seconds.labels(*key).inc(result.rate_limited_for)
            m.polls.labels(*key, "rate_limited").inc()
        elif result.error is not None:
            m.polls.labels(*key, "error").inc()
        elif result.skipped_run is not None:
            m.polls.labels(*key, "skipped").inc()
        else:
            m.polls.labels(*key, "ok").inc()
        for outcome, count in result.outcomes.items():
            m.mentions.labels(*key, str(outcome)).inc(count)

    def poll_all(self) -> list[PollResult]:
        return [self.poll(*key) for key in self.adapters]

    def sweep_deleted(self) -> int:
        return sum(sweep_deleted(adapter, sessions=self.sessions) for adapter in self.adapters.values())

    def send_replies(self) -> int:
        return send_due_replies(
            self.adapters,
            sessions=self.sessions,
            policy=self.reply_policy,
            owner=self.owner,
            on_sent=self.metrics.reply_sent,
        )

    def deliver(self) -> int:
        """File due tickets in each helpdesk and forward their events."""
        return deliver_due(self.helpdesks, sessions=self.sessions, policy=self.filing_policy, owner=self.owner)

    def sync(self) -> int:
        """Read filed tickets' status back from the helpdesks that can be read."""
        return sync_statuses(self.helpdesks, sessions=self.sessions)

    def heartbeat(self) -> None:
        """Renew every lease and claim this daemon holds, so that they outlive it only briefly."""
        with transaction(self.sessions) as session:
            renew(session, self.owner, utcnow())

    def jobs(self) -> dict[str, Callable[[], object]]:
        """Every job this daemon runs, by the name /healthz reports it under."""
        jobs: dict[str, Callable[[], object]] = {f"poll {p}/{n}": partial(self.poll, p, n) for p, n in self.adapters}
        jobs["replies"] = self.send_replies
        jobs["heartbeat"] = self.heartbeat
        if self.helpdesks:
            jobs["deliveries"] = self.deliver
        if any(h.reads_status for h in self.helpdesks.values()):
            jobs["helpdesk sync"] = self.sync
        for (platform, name), adapter in self.adapters.items():
            if isinstance(adapter, ChecksDeletions):
                jobs[f"deletion sweep {platform}/{name}"] = partial(sweep_deleted, adapter, sessions=self.sessions)
        return jobs

    def run_job(self, name: str) -> object:
        """Run one job through the boundary that records its outcome; one bad pass never stops the next."""
        return self.board.run(name, self.jobs()[name])

    def _intervals(self) -> dict[str, float]:
        seconds = {f"poll {p}/{n}": s for (p, n), s in self.poll_seconds().items()}
        for (p, n), adapter in self.adapters.items():
            seconds[f"deletion sweep {p}/{n}"] = getattr(adapter, "deletion_check_seconds", DELETION_SWEEP_SECONDS)
        syncs = [h.sync_seconds for h in self.settings.helpdesk.values() if hasattr(h, "sync_seconds")]
        seconds["helpdesk sync"] = min(syncs, default=DEFAULT_SYNC_SECONDS)
        seconds["heartbeat"] = HEARTBEAT_SECONDS
        return seconds

    def start_metrics(self) -> MetricsServer | None:
        """Serve /metrics on ``web.metrics_port`` if one is set (never on the public web port)."""
        web = self.settings.web
        if web.metrics_port is not None and self.metrics_server is None:
            self.metrics_server = MetricsServer(self.metrics.registry, web.metrics_host, web.metrics_port)
        return self.metrics_server

    def start_scheduler(self) -> BackgroundScheduler:
        scheduler = BackgroundScheduler(timezone="UTC")
        intervals = self._intervals()
        now = datetime.now(UTC)
        loop_seconds = {"replies": self.settings.reply.interval_seconds, "deliveries": DELIVERY_SECONDS}
        for name in self.jobs():
            if name in loop_seconds:  # loops of their own, woken by intake
                self.loops[name] = WakeableLoop(name, partial(self.run_job, name), loop_seconds[name])
                continue
            # Polls, the heartbeat and the sync start at once; sweeps first run one interval after start.
            first = {} if name.startswith("deletion sweep") else {"next_run_time": now}
            scheduler.add_job(
                self.run_job,
                "interval",
                seconds=intervals[name],
                id=name,
                args=[name],
                max_instances=1,
                coalesce=True,
                **first,
            )
        for loop in self.loops.values():
            loop.start()
        scheduler.start()
        self.scheduler = scheduler
        return scheduler

    def stop_jobs(self) -> None:
        """Stop scheduling; wait for running jobs to finish."""
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        for loop in self.loops.values():
            loop.stop()

    def close(self) -> None:
        self.stop_jobs()
        if self.metrics_server is not None:
            self.metrics_server.close()
        try:
            with transaction(self.sessions) as session:
                release_all(session, self.owner)
        except Exception as exc:  # the database may be what is failing; the leases then run out on their own
            logger.warning("could not release this daemon's leases: %s", exc)
        for adapter in self.adapters.values():
            adapter.close()
        for helpdesk in self.helpdesks.values():
            helpdesk.close()
        self.engine.dispose()


__all__ = ["Classify", "Daemon"]
