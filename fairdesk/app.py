"""The composition root: settings -> engine -> classifier -> adapters -> scheduler -> web. build() starts nothing."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine
from sqlmodel import select

from config.settings import Settings
from listener.base import Adapter
from listener.deletions import ChecksDeletions, sweep_deleted
from listener.poll import PollResult, poll_once
from listener.registry import build_adapters
from listener.replies import ReplyPolicy, send_due_replies
from listener.sample import SampleAdapter
from ticketing.db import SessionFactory, make_engine, migrate, session_factory, transaction
from ticketing.mail import MailConfig
from ticketing.models import LedgerEntry, Setting
from ticketing.priority import Verdict
from ticketing.web import WebContext, create_app

logger = logging.getLogger(__name__)

Classify = Callable[[Sequence[str]], Sequence[Verdict]]
SECRET_KEY_SETTING = "web_secret_key"
DELETION_SWEEP_SECONDS = 15 * 60
DEFAULT_POLL_SECONDS = 60.0


def daemon_id() -> str:
    """Names this process in leases and claims, so several daemons can share one database."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def load_default_classifier(settings: Settings) -> Classify:
    from nlp import load_classifier  # spaCy loads here, once, and only here

    classifier = load_classifier(settings.nlp.model_path, threshold=settings.nlp.threshold)
    return classifier.classify_many


@dataclass
class Daemon:
    settings: Settings
    engine: Engine
    sessions: SessionFactory
    classify: Classify
    adapters: dict[tuple[str, str], Adapter]
    owner: str
    web_app: Any = None
    scheduler: BackgroundScheduler | None = None

    @property
    def reply_policy(self) -> ReplyPolicy:
        r = self.settings.reply
        return ReplyPolicy(r.template, self.settings.public_url, r.max_attempts, r.backoff_seconds)

    def poll(self, platform: str, account: str) -> PollResult:
        return poll_once(
            self.adapters[(platform, account)], classify=self.classify, sessions=self.sessions, owner=self.owner
        )

    def poll_all(self) -> list[PollResult]:
        return [self.poll(*key) for key in self.adapters]

    def sweep_deleted(self) -> int:
        return sum(sweep_deleted(adapter, sessions=self.sessions) for adapter in self.adapters.values())

    def send_replies(self) -> int:
        return send_due_replies(self.adapters, sessions=self.sessions, policy=self.reply_policy, owner=self.owner)

    def _job(self, name: str, fn: Callable[[], object]) -> None:
        # The job boundary: one bad pass is logged and the next one runs on schedule.
        try:
            fn()
        except Exception:
            logger.exception("%s failed", name)

    def start_scheduler(self) -> BackgroundScheduler:
        scheduler = BackgroundScheduler(timezone="UTC")
        intervals = {(p, n): float(a.poll_seconds) for p, n, a in self.settings.accounts()}
        for platform, name in self.adapters:
            scheduler.add_job(
                self._job,
                "interval",
                seconds=intervals.get((platform, name), DEFAULT_POLL_SECONDS),
                id=f"poll-{platform}-{name}",
                args=[f"poll {platform}/{name}", lambda p=platform, n=name: self.poll(p, n)],
                max_instances=1,
                coalesce=True,
                next_run_time=datetime.now(UTC),
            )
        scheduler.add_job(
            self._job,
            "interval",
            seconds=self.settings.reply.interval_seconds,
            id="replies",
            args=["reply job", self.send_replies],
            max_instances=1,
            coalesce=True,
        )
        for (platform, name), adapter in self.adapters.items():
            if isinstance(adapter, ChecksDeletions):
                scheduler.add_job(
                    self._job,
                    "interval",
                    seconds=getattr(adapter, "deletion_check_seconds", DELETION_SWEEP_SECONDS),
                    id=f"deletions-{platform}-{name}",
                    args=[
                        f"deletion sweep {platform}/{name}",
                        lambda a=adapter: sweep_deleted(a, sessions=self.sessions),
                    ],
                    max_instances=1,
                    coalesce=True,
                )
        scheduler.start()
        self.scheduler = scheduler
        return scheduler

    def close(self) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        for adapter in self.adapters.values():
            adapter.close()
        self.engine.dispose()


def _secret_key(settings: Settings, sessions: SessionFactory) -> str:
    """The configured key, or one made once and kept in the database (so every daemon sharing it agrees)."""
    if settings.web.secret_key is not None:
        return settings.web.secret_key.get_secret_value()
    with transaction(sessions) as session:
        row = session.get(Setting, SECRET_KEY_SETTING)
        if row is None:
            row = Setting(key=SECRET_KEY_SETTING, value=secrets.token_urlsafe(32))
            session.add(row)
        return row.value


def _mail_config(settings: Settings) -> MailConfig | None:
    mail = settings.mail
    if not mail.smtp_host or not mail.from_address:
        return None
    password = mail.smtp_password.get_secret_value() if mail.smtp_password else None
    return MailConfig(
        host=mail.smtp_host,
        sender=mail.from_address,
        port=mail.smtp_port,
        security=mail.smtp_security,
        username=mail.smtp_username,
        password=password,
        timeout=mail.timeout_seconds,
    )


def _sample_views(
    adapters: dict[tuple[str, str], Adapter], sessions: SessionFactory
) -> tuple[Callable[[], list[dict[str, Any]]], Callable[[], list[dict[str, Any]]]] | None:
    samples = [a for a in adapters.values() if isinstance(a, SampleAdapter)]
    if not samples:
        return None

    def replies() -> list[dict[str, Any]]:
        return [r for a in samples for r in a.sent()]

    def posts() -> list[dict[str, Any]]:
        with transaction(sessions) as session:
            rows = session.exec(
                select(LedgerEntry).where(LedgerEntry.platform == "sample").order_by(LedgerEntry.id.desc())  # type: ignore[union-attr]
            )
            return [r.model_dump() for r in rows]

    return replies, posts


def build(
    settings: Settings,
    *,
    adapters: dict[tuple[str, str], Adapter] | None = None,
    classify: Classify | None = None,
    engine: Engine | None = None,
) -> Daemon:
    """Wire everything from settings without starting anything; tests pass fakes for any part."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = engine or make_engine(settings.resolved_database_url)
    migrate(engine)
    sessions = session_factory(engine)
    adapters = build_adapters(settings) if adapters is None else adapters
    classify = classify or load_default_classifier(settings)
    daemon = Daemon(settings, engine, sessions, classify, adapters, daemon_id())
    views = _sample_views(adapters, sessions)
    daemon.web_app = create_app(
        WebContext(
            sessions=sessions,
            classify=classify,
            public_url=settings.public_url,
            secret_key=_secret_key(settings, sessions),
            blind_triage=settings.web.blind_triage,
            accounts=list(adapters),
            sample_replies=views[0] if views else None,
            sample_posts=views[1] if views else None,
            mail=_mail_config(settings),
        )
    )
    return daemon


class _Server(uvicorn.Server):
    """Announces the real address once listening; exits 0 on SIGTERM (uvicorn itself re-raises the signal)."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[str], None] | None) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started and self._on_ready is not None:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            self._on_ready(f"http://{host}:{port}")

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        def stop(signum: int, _frame: object) -> None:
            if self.should_exit:
                self.force_exit = True
            logger.info("received %s; stopping", signal.Signals(signum).name)
            self.should_exit = True

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve(daemon: Daemon, *, on_ready: Callable[[str], None] | None = None) -> None:
    """Run the scheduler and the web pages until SIGINT/SIGTERM, then stop cleanly."""
    web = daemon.settings.web
    config = uvicorn.Config(daemon.web_app, host=web.host, port=web.port, log_level="warning", access_log=False)
    server = _Server(config, on_ready)
    daemon.start_scheduler()
    try:
        server.run()  # uvicorn handles SIGINT/SIGTERM and returns
    finally:
        logger.info("stopping: waiting for running jobs")
        daemon.close()
