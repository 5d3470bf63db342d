"""The composition root: settings -> engine -> classifier -> adapters -> scheduler -> web. build() starts nothing."""

from __future__ import annotations

import contextlib
import logging
import secrets
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine
from sqlmodel import select

from config.settings import Settings
from fairdesk.jobs import JobBoard, WakeableLoop
from listener.base import Adapter
from listener.deletions import ChecksDeletions, sweep_deleted
from listener.poll import PollResult, poll_once
from listener.registry import build_adapters
from listener.replies import ReplyPolicy, send_due_replies
from listener.sample import SampleAdapter
from ticketing.db import SessionFactory, insert_if_absent, make_engine, migrate, session_factory, transaction
from ticketing.leases import HEARTBEAT_SECONDS, daemon_id, release_all, renew
from ticketing.mail import MailConfig
from ticketing.models import LedgerEntry, Setting, utcnow
from ticketing.priority import Verdict
from ticketing.web import WebContext, create_app

logger = logging.getLogger(__name__)

Classify = Callable[[Sequence[str]], Sequence[Verdict]]
SECRET_KEY_SETTING = "web_secret_key"
DELETION_SWEEP_SECONDS = 15 * 60
DEFAULT_POLL_SECONDS = 60.0


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
    board: JobBoard = field(default_factory=JobBoard)
    reply_loop: WakeableLoop | None = None

    @property
    def reply_policy(self) -> ReplyPolicy:
        r = self.settings.reply
        return ReplyPolicy(r.template, self.settings.public_url, r.max_attempts, r.backoff_seconds)

    def poll_seconds(self) -> dict[tuple[str, str], float]:
        intervals = {(p, n): float(a.poll_seconds) for p, n, a in self.settings.accounts()}
        return {key: intervals.get(key, DEFAULT_POLL_SECONDS) for key in self.adapters}

    def poll(self, platform: str, account: str) -> PollResult:
        result = poll_once(
            self.adapters[(platform, account)], classify=self.classify, sessions=self.sessions, owner=self.owner
        )
        if result.replies_queued and self.reply_loop is not None:
            self.reply_loop.wake()  # the reply leaves now, not at the next tick
        return result

    def poll_all(self) -> list[PollResult]:
        return [self.poll(*key) for key in self.adapters]

    def sweep_deleted(self) -> int:
        return sum(sweep_deleted(adapter, sessions=self.sessions) for adapter in self.adapters.values())

    def send_replies(self) -> int:
        return send_due_replies(self.adapters, sessions=self.sessions, policy=self.reply_policy, owner=self.owner)

    def heartbeat(self) -> None:
        """Renew every lease and claim this daemon holds, so that they outlive it only briefly."""
        with transaction(self.sessions) as session:
            renew(session, self.owner, utcnow())

    def jobs(self) -> dict[str, Callable[[], object]]:
        """Every job this daemon runs, by the name /healthz reports it under."""
        jobs: dict[str, Callable[[], object]] = {
            f"poll {p}/{n}": (lambda p=p, n=n: self.poll(p, n))
            for p, n in self.adapters  # type: ignore[misc]
        }
        jobs["replies"] = self.send_replies
        jobs["heartbeat"] = self.heartbeat
        for (platform, name), adapter in self.adapters.items():
            if isinstance(adapter, ChecksDeletions):
                jobs[f"deletion sweep {platform}/{name}"] = lambda a=adapter: sweep_deleted(a, sessions=self.sessions)
        return jobs

    def run_job(self, name: str) -> object:
        """Run one job through the boundary that records its outcome; one bad pass never stops the next."""
        return self.board.run(name, self.jobs()[name])

    def start_scheduler(self) -> BackgroundScheduler:
        scheduler = BackgroundScheduler(timezone="UTC")
        deletion_seconds = {
            f"deletion sweep {p}/{n}": getattr(a, "deletion_check_seconds", DELETION_SWEEP_SECONDS)
            for (p, n), a in self.adapters.items()
        }
        intervals = {f"poll {p}/{n}": s for (p, n), s in self.poll_seconds().items()}
        now = datetime.now(UTC)
        for name in self.jobs():
            if name == "replies":
                continue  # its own loop, woken by intake
            seconds = intervals.get(name) or deletion_seconds.get(name) or HEARTBEAT_SECONDS
            # Polls and the heartbeat start at once; sweeps first run one interval after start.
            first = {"next_run_time": now} if name in intervals or name == "heartbeat" else {}
            scheduler.add_job(
                self.run_job, "interval", seconds=seconds, id=name, args=[name], max_instances=1, coalesce=True, **first
            )
        self.reply_loop = WakeableLoop("replies", lambda: self.run_job("replies"), self.settings.reply.interval_seconds)
        self.reply_loop.start()
        scheduler.start()
        self.scheduler = scheduler
        return scheduler

    def close(self) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        if self.reply_loop is not None:
            self.reply_loop.stop()
        try:
            with transaction(self.sessions) as session:
                release_all(session, self.owner)
        except Exception as exc:  # the database may be what is failing; the leases then run out on their own
            logger.warning("could not release this daemon's leases: %s", exc)
        for adapter in self.adapters.values():
            adapter.close()
        self.engine.dispose()


def _secret_key(settings: Settings, sessions: SessionFactory) -> str:
    """The configured key, or one made once and kept in the database (so every daemon sharing it agrees)."""
    if settings.web.secret_key is not None:
        return settings.web.secret_key.get_secret_value()
    with transaction(sessions) as session:
        # Daemons starting together each offer a key; the first insert wins and everyone reads that one back.
        insert_if_absent(session, Setting(key=SECRET_KEY_SETTING, value=secrets.token_urlsafe(32)))
        row = session.get(Setting, SECRET_KEY_SETTING)
        assert row is not None
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
            poll_seconds=daemon.poll_seconds(),
            jobs=daemon.board.snapshot,
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
