"""/metrics: Prometheus text on its own listener, this daemon's counters and the database's gauges at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from fairdesk.app import Daemon, build
from fairdesk.config.helpdesks import WebhookHelpdesk as WebhookSettings
from fairdesk.config.settings import Settings, WebSettings
from fairdesk.listener.base import RateLimited
from fairdesk.metrics import DatabaseGauges
from fairdesk.ticketing.db import transaction
from fairdesk.ticketing.models import AccountState
from tests.peers.webhook import WebhookReceiver
from tests.support import FakeAdapter, fake_classify, mention


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def metrics_daemon(tmp_path: Path, engine: Engine, fake_adapter: FakeAdapter) -> Iterator[Daemon]:
    """A wired daemon whose metrics listener is on a free loopback port (web.metrics_port = 0)."""
    settings = Settings(data_dir=tmp_path / "data", web=WebSettings(metrics_port=0))
    d = build(settings, adapters={("fake", "brand"): fake_adapter}, classify=fake_classify, engine=engine)
    yield d
    d.close()


def _scrape(daemon: Daemon) -> dict:
    server = daemon.start_metrics()
    assert server is not None
    response = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return _samples(response.text)


def test_metrics_count_polls_outcomes_replies_and_read_shared_state_at_scrape_time(
    metrics_daemon: Daemon, fake_adapter: FakeAdapter
) -> None:
    fake_adapter.mentions = [mention("1"), mention("2", "love the new app"), mention("3", "outage again, broken")]
    metrics_daemon.poll("fake", "brand")

    before = _scrape(metrics_daemon)
    assert _value(before, "fairdesk_mentions_total", platform="fake", account="brand", outcome="ticketed") == 2
    assert _value(before, "fairdesk_mentions_total", platform="fake", account="brand", outcome="skipped") == 1
    assert _value(before, "fairdesk_polls_total", platform="fake", account="brand", result="ok") == 1
    assert _value(before, "fairdesk_poll_seconds_count", platform="fake", account="brand") == 1
    assert _value(before, "fairdesk_classify_seconds_count") == 1
    assert _value(before, "fairdesk_classified_posts_total") == 3
    assert _value(before, "fairdesk_replies", platform="fake", state="pending") == 2  # read from the database
    assert _value(before, "fairdesk_tickets", channel="social", status="new") == 2
    assert _value(before, "fairdesk_database_up") == 1
    with transaction(metrics_daemon.sessions) as session:
        state = session.get(AccountState, ("fake", "brand"))
        assert state is not None and state.last_success_at is not None
        polled_at = state.last_success_at.timestamp()
    last = _value(before, "fairdesk_last_successful_poll_timestamp_seconds", platform="fake", account="brand")
    assert last == pytest.approx(polled_at)

    assert metrics_daemon.send_replies() == 2
    after = _scrape(metrics_daemon)
    assert _value(after, "fairdesk_replies_sent_total", platform="fake") == 2
    assert _value(after, "fairdesk_reply_latency_seconds_count", platform="fake") == 2
    assert _value(after, "fairdesk_replies", platform="fake", state="sent") == 2
    assert ("fairdesk_replies", (("platform", "fake"), ("state", "pending"))) not in after


def test_rate_limit_waits_and_errors_are_counted(metrics_daemon: Daemon, fake_adapter: FakeAdapter) -> None:
    fake_adapter.fetch_errors = [RateLimited("mentions window shut", retry_after=90.0)]
    metrics_daemon.poll("fake", "brand")
    samples = _scrape(metrics_daemon)
    assert _value(samples, "fairdesk_rate_limit_waits_total", platform="fake", account="brand") == 1
    assert _value(samples, "fairdesk_rate_limit_wait_seconds_total", platform="fake", account="brand") == 90.0
    assert _value(samples, "fairdesk_polls_total", platform="fake", account="brand", result="rate_limited") == 1


def test_helpdesk_deliveries_by_state_are_gauges(
    tmp_path: Path, engine: Engine, fake_adapter: FakeAdapter, webhook_receiver: WebhookReceiver
) -> None:
    hooks = WebhookSettings(kind="webhook", url=webhook_receiver.url, secret=SecretStr(webhook_receiver.secret))
    settings = Settings(data_dir=tmp_path / "data", web=WebSettings(metrics_port=0), helpdesk={"hooks": hooks})
    daemon = build(settings, adapters={("fake", "brand"): fake_adapter}, classify=fake_classify, engine=engine)
    try:
        fake_adapter.mentions = [mention("1"), mention("2", "outage, broken")]
        daemon.poll("fake", "brand")
        queued = _scrape(daemon)
        webhook_receiver.fail_next = [422]  # the first is refused for good, the second filed
        daemon.deliver()
        filed = _scrape(daemon)
    finally:
        daemon.close()
    assert _value(queued, "fairdesk_helpdesk_deliveries", helpdesk="hooks", state="pending") == 2
    assert _value(filed, "fairdesk_helpdesk_deliveries", helpdesk="hooks", state="failed") == 1
    assert _value(filed, "fairdesk_helpdesk_deliveries", helpdesk="hooks", state="filed") == 1


def test_no_metrics_listener_by_default_and_none_on_the_public_pages(daemon: Daemon) -> None:
    assert daemon.settings.web.metrics_port is None
    assert daemon.start_metrics() is None
    from fastapi.testclient import TestClient

    with TestClient(daemon.web_app) as client:
        assert client.get("/metrics").status_code == 404


def test_database_gauges_report_the_database_down_instead_of_failing_the_scrape() -> None:
    def unreachable() -> Session:
        raise OperationalError("SELECT 1", {}, OSError("connection refused"))

    families = {family.name: family for family in DatabaseGauges(unreachable).collect()}
    assert [s.value for s in families["fairdesk_database_up"].samples] == [0]
    assert set(families) == {"fairdesk_database_up"}
