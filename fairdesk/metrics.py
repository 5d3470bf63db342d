"""Prometheus metrics: this process's counters and histograms, and gauges read from the database at scrape time.

Counters and histograms count what *this daemon* did since it started (several daemons sharing a database each
report their own; sum them in Prometheus). Gauges that describe shared state — replies and helpdesk deliveries by
state, tickets by channel and status, each account's last successful poll — are read from the database on every
scrape, so every daemon reports the same, true figures.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlmodel import col, select

from fairdesk.ticketing.db import SessionFactory, transaction
from fairdesk.ticketing.models import AccountState, HelpdeskDelivery, Outbox, Ticket
from fairdesk.ticketing.priority import Verdict

logger = logging.getLogger(__name__)

# Polls and classification are sub-second normally; replies and deliveries wait on other services.
POLL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CLASSIFY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
REPLY_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


class DatabaseGauges(Collector):
    """Shared state, read from the database on each scrape (one short read transaction)."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("fairdesk_database_up", "1 if the database answered this scrape, else 0.")
        replies = GaugeMetricFamily(
            "fairdesk_replies",
            "Public replies in the outbox by state (pending, sending, sent, failed, ...).",
            labels=["platform", "state"],
        )
        deliveries = GaugeMetricFamily(
            "fairdesk_helpdesk_deliveries", "Tickets per helpdesk by delivery state.", labels=["helpdesk", "state"]
        )
        tickets = GaugeMetricFamily("fairdesk_tickets", "Tickets by channel and status.", labels=["channel", "status"])
        last_poll = GaugeMetricFamily(
            "fairdesk_last_successful_poll_timestamp_seconds",
            "When each account was last polled successfully (Unix time; absent: never).",
            labels=["platform", "account"],
        )
        try:
            with transaction(self._sessions) as session:
                reply_rows = session.exec(
                    select(Outbox.platform, Outbox.state, func.count()).group_by(
                        col(Outbox.platform), col(Outbox.state)
                    )
                ).all()
                delivery_rows = session.exec(
                    select(HelpdeskDelivery.helpdesk, HelpdeskDelivery.state, func.count()).group_by(
                        col(HelpdeskDelivery.helpdesk), col(HelpdeskDelivery.state)
                    )
                ).all()
                ticket_rows = session.exec(
                    select(Ticket.channel, Ticket.status, func.count()).group_by(
                        col(Ticket.channel), col(Ticket.status)
                    )
                ).all()
                polls = session.exec(select(AccountState.platform, AccountState.account, AccountState.last_success_at))
                poll_rows = polls.all()
        except Exception as exc:  # a scrape must answer even when the database does not
            logger.debug("metrics: database not readable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        for platform, state, count in reply_rows:
            replies.add_metric([platform, state], count)
        for helpdesk, state, count in delivery_rows:
            deliveries.add_metric([helpdesk, state], count)
        for channel, status, count in ticket_rows:
            tickets.add_metric([channel, status], count)
        for platform, account, at in poll_rows:
            if at is not None:
                last_poll.add_metric([platform, account], _timestamp(at))
        yield from (up, replies, deliveries, tickets, last_poll)


def _timestamp(at: datetime) -> float:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


@dataclass
class Metrics:
    """One daemon's metrics, in a registry of its own (tests and several daemons in one process never collide)."""

    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        r = self.registry
        self.mentions = Counter(
            "fairdesk_mentions",
            "Mentions this daemon fetched and recorded, by outcome (ticketed, appended, merged, skipped).",
            ["platform", "account", "outcome"],
            registry=r,
        )
        self.polls = Counter(
            "fairdesk_polls",
            "Polls run, by result (ok, error, rate_limited, skipped).",
            ["platform", "account", "result"],
            registry=r,
        )
        self.poll_seconds = Histogram(
            "fairdesk_poll_seconds",
            "Time one poll took (fetch, classify, record).",
            ["platform", "account"],
            buckets=POLL_BUCKETS,
            registry=r,
        )
        self.rate_limit_waits = Counter(
            "fairdesk_rate_limit_waits",
            "Polls that found the platform's rate limit shut.",
            ["platform", "account"],
            registry=r,
        )
        self.rate_limit_wait_seconds = Counter(
            "fairdesk_rate_limit_wait_seconds",
            "Seconds the platform asked this daemon to wait.",
            ["platform", "account"],
            registry=r,
        )
        self.classify_seconds = Histogram(
            "fairdesk_classify_seconds",
            "Time the classifier took per batch of posts.",
            buckets=CLASSIFY_BUCKETS,
            registry=r,
        )
        self.classified = Counter("fairdesk_classified_posts", "Posts the classifier judged.", registry=r)
        self.replies_sent = Counter(
            "fairdesk_replies_sent", "Public replies this daemon sent.", ["platform"], registry=r
        )
        self.reply_latency = Histogram(
            "fairdesk_reply_latency_seconds",
            "From a reply being queued (the poll that found the post) to the platform accepting it.",
            ["platform"],
            buckets=REPLY_BUCKETS,
            registry=r,
        )

    def watch_database(self, sessions: SessionFactory) -> None:
        self.registry.register(DatabaseGauges(sessions))

    def timed_classify(
        self, classify: Callable[[Sequence[str]], Sequence[Verdict]]
    ) -> Callable[[Sequence[str]], Sequence[Verdict]]:
        def timed(texts: Sequence[str]) -> Sequence[Verdict]:
            start = time.perf_counter()
            try:
                return classify(texts)
            finally:
                self.classify_seconds.observe(time.perf_counter() - start)
                self.classified.inc(len(texts))

        return timed

    def reply_sent(self, platform: str, queued_seconds: float) -> None:
        self.replies_sent.labels(platform).inc()
        self.reply_latency.labels(platform).observe(max(queued_seconds, 0.0))


class MetricsServer:
    """The metrics listener: its own address and port, apart from the public web pages (see README, Monitoring)."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self._server: WSGIServer
        self._thread: threading.Thread
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        self.port = int(self._server.server_address[1])
        logger.info("metrics on http://%s:%d/metrics", host, self.port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


__all__ = ["DatabaseGauges", "Metrics", "MetricsServer"]
