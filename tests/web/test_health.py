"""/healthz tells the truth: JSON always, `degraded` with the reason whenever work is failing or late."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import select

from fairdesk.app import Daemon
from fairdesk.ticketing.db import make_engine, session_factory, transaction
from fairdesk.ticketing.models import AccountState, Outbox, utcnow
from fairdesk.ticketing.web import WebContext, create_app
from tests.support import FakeAdapter, fake_classify, mention


def _health(daemon: Daemon) -> tuple[int, dict]:
    with TestClient(daemon.web_app) as client:
        response = client.get("/healthz")
    assert response.headers["content-type"].startswith("application/json")
    return response.status_code, response.json()


def test_ok_when_every_account_polls_and_nothing_is_stuck(daemon: Daemon, fake_adapter: FakeAdapter) -> None:
    fake_adapter.mentions = [mention("1", "broken")]
    daemon.run_job("poll fake/brand")
    daemon.run_job("replies")
    status, body = _health(daemon)
    assert status == 200 and body["status"] == "ok" and body["problems"] == []


def test_a_job_that_keeps_failing_for_any_reason_makes_it_degraded(daemon: Daemon, fake_adapter: FakeAdapter) -> None:
    # Not an adapter error: e.g. a malformed feed line, a full disk or a database error inside the poll.
    fake_adapter.fetch_errors = [ValueError("feed line 7 is not JSON"), ValueError("feed line 7 is not JSON")]  # type: ignore[list-item]
    daemon.run_job("poll fake/brand")
    daemon.run_job("poll fake/brand")
    status, body = _health(daemon)
    assert status == 200 and body["status"] == "degraded"
    assert any("poll fake/brand" in p and "feed line 7 is not JSON" in p for p in body["problems"]), body
    (job,) = [j for j in body["jobs"] if j["job"] == "poll fake/brand"]
    assert job["failing"] and job["last_error"] == "ValueError: feed line 7 is not JSON"

    daemon.run_job("poll fake/brand")  # recovers
    assert _health(daemon)[1]["status"] == "ok"


def test_an_account_whose_last_success_is_older_than_three_intervals_is_behind(daemon: Daemon) -> None:
    interval = daemon.poll_seconds()[("fake", "brand")]
    with transaction(daemon.sessions) as session:
        session.add(
            AccountState(
                platform="fake",
                account="brand",
                last_success_at=utcnow() - timedelta(seconds=3 * interval + 5),
                last_error="TransientError: 503",
            )
        )
    status, body = _health(daemon)
    assert body["status"] == "degraded"
    assert body["accounts"][0]["healthy"] is False and "503" in body["accounts"][0]["problem"]


def test_replies_overdue_by_more_than_a_minute_make_it_degraded(daemon: Daemon, fake_adapter: FakeAdapter) -> None:
    fake_adapter.mentions = [mention("1", "broken")]
    daemon.run_job("poll fake/brand")
    with transaction(daemon.sessions) as session:
        row = session.exec(select(Outbox)).one()
        row.next_attempt_at = utcnow() - timedelta(minutes=5)
        session.add(row)
    status, body = _health(daemon)
    assert body["status"] == "degraded" and body["replies"]["overdue"] == 1
    assert any("overdue" in p for p in body["problems"])


def test_with_the_database_unreachable_it_answers_503_json(daemon: Daemon) -> None:
    unreachable = make_engine("postgresql+psycopg://fairdesk@127.0.0.1:1/fairdesk?connect_timeout=2")
    app = create_app(
        WebContext(
            sessions=session_factory(unreachable),
            classify=fake_classify,
            public_url="http://127.0.0.1:8000",
            secret_key="k" * 32,
            accounts=[("fake", "brand")],
            jobs=daemon.board.snapshot,
        )
    )
    with TestClient(app) as client:
        response = client.get("/healthz")
    assert response.status_code == 503 and response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "down" and "database unreachable" in body["problems"][0]
    unreachable.dispose()
