"""Shared fixtures: real, cheap objects (SQLite files, a fresh PostgreSQL database, fakes over mocks)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from fairdesk.app import Daemon, build
from fairdesk.config.settings import SampleAccount, Settings
from fairdesk.ticketing.db import make_engine, migrate
from tests.support import FakeAdapter, fake_classify

pytest_plugins = ["tests.fakes.fixtures", "tests.peers.bluesky", "tests.peers.rt", "tests.peers.webhook"]

KEEP_ENV = ("FAIRDESK_TEST_POSTGRES_URL", "FAIRDESK_CACHE", "FAIRDESK_BLUESKY_PDS", "FAIRDESK_BLUESKY_KEEP")
POSTGRES_URL = os.environ.get("FAIRDESK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """pydantic-settings reads FAIRDESK_* variables; no test may see the developer's."""
    for name in list(os.environ):
        if name.startswith("FAIRDESK_") and name not in KEEP_ENV:
            monkeypatch.delenv(name)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards.

    Example: ``def test_x(pg_url): engine = make_engine(pg_url)``
    """
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"fairdesk_t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base, _, _ = POSTGRES_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database URL, once for SQLite (the embedded default) and once for PostgreSQL (the scale-out store)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fairdesk.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated engine on each database kind."""
    engine = make_engine(db_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Minimal settings in a temp data dir: one sample account, no config file, nothing from the environment."""
    return Settings(data_dir=tmp_path / "data", sample={"demo": SampleAccount(per_poll=10)})


@pytest.fixture
def fake_adapter() -> FakeAdapter:
    return FakeAdapter()


@pytest.fixture
def daemon(settings: Settings, engine: Engine, fake_adapter: FakeAdapter) -> Iterator[Daemon]:
    """A wired daemon (nothing started) on the fake platform with the fake content-only classifier.

    Example: ``fake_adapter.mentions = [mention("1")]; daemon.poll_all(); daemon.send_replies()``
    """
    d = build(settings, adapters={("fake", "brand"): fake_adapter}, classify=fake_classify, engine=engine)
    yield d
    d.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI every peer and ../shared are there, so a skip means something is missing: it fails the run."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where nothing may be: {report.longrepr}"
