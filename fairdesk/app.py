"""The composition root: settings -> engine -> classifier -> adapters -> helpdesks -> web. build() starts nothing."""

from __future__ import annotations

import contextlib
import logging
import secrets
import signal
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import uvicorn
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from fairdesk.config.settings import Settings
from fairdesk.daemon import Classify, Daemon
from fairdesk.helpdesk.base import Helpdesk
from fairdesk.helpdesk.registry import build_helpdesks
from fairdesk.listener.base import Adapter
from fairdesk.listener.registry import build_adapters
from fairdesk.listener.sample import SampleAdapter
from fairdesk.ticketing.db import SessionFactory, insert_if_absent, make_engine, migrate, session_factory, transaction
from fairdesk.ticketing.deliveries import bind_helpdesks
from fairdesk.ticketing.incidents import IncidentRules, bind_incident_rules
from fairdesk.ticketing.leases import daemon_id
from fairdesk.ticketing.mail import MailConfig
from fairdesk.ticketing.models import LedgerEntry, Setting
from fairdesk.ticketing.web import WebContext, create_app
from fairdesk.ticketing.web.app import server_config

logger = logging.getLogger(__name__)

SECRET_KEY_SETTING = "web_secret_key"


def load_default_classifier(settings: Settings) -> Classify:
    from fairdesk.nlp import load_classifier  # spaCy loads here, once, and only here

    classifier = load_classifier(settings.nlp.model_path, threshold=settings.nlp.threshold)
    return classifier.classify_many


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


def mail_config(settings: Settings) -> MailConfig | None:
    """The [mail] settings as the SMTP sender takes them; None when email replies are off."""
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
                select(LedgerEntry).where(LedgerEntry.platform == "sample").order_by(col(LedgerEntry.id).desc())
            )
            return [r.model_dump() for r in rows]

    return replies, posts


def _binding(sessions: SessionFactory, helpdesks: tuple[str, ...], incidents: IncidentRules) -> SessionFactory:
    """Sessions that know which helpdesks new tickets are filed in (see ticketing.deliveries) and how complaints are
    grouped into incidents (ticketing.incidents)."""

    def factory() -> Session:
        return bind_incident_rules(bind_helpdesks(sessions(), helpdesks), incidents)

    return factory


def build(
    settings: Settings,
    *,
    adapters: dict[tuple[str, str], Adapter] | None = None,
    classify: Classify | None = None,
    engine: Engine | None = None,
    helpdesks: dict[str, Helpdesk] | None = None,
) -> Daemon:
    """Wire everything from settings without starting anything; tests pass fakes for any part."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = engine or make_engine(settings.resolved_database_url)
    migrate(engine, wait_seconds=settings.database_wait_seconds)
    sessions = session_factory(engine)
    adapters = build_adapters(settings) if adapters is None else adapters
    classify = classify or load_default_classifier(settings)
    helpdesks = build_helpdesks(settings) if helpdesks is None else helpdesks
    names = tuple(helpdesks)
    sessions = _binding(sessions, names, IncidentRules.from_settings(settings.incidents))
    daemon = Daemon(settings, engine, sessions, classify, adapters, daemon_id(), helpdesks)
    daemon.metrics.watch_database(sessions)
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
            helpdesks=names,
            sample_replies=views[0] if views else None,
            sample_posts=views[1] if views else None,
            mail=mail_config(settings),
            trusted_proxies=tuple(settings.web.trusted_proxies),
            session_idle=timedelta(minutes=settings.web.session_idle_minutes),
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
    config = server_config(daemon.web_app, web.host, web.port)
    server = _Server(config, on_ready)
    daemon.start_metrics()
    daemon.start_scheduler()
    try:
        server.run()  # uvicorn handles SIGINT/SIGTERM and returns
    finally:
        logger.info("stopping: waiting for running jobs")
        daemon.close()
