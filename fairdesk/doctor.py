"""`fairdesk doctor`: one line per check of what a live daemon needs, read-only; any failure makes the exit non-zero."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from fairdesk.config.settings import ConfigError, Settings, load_settings
from fairdesk.helpdesk.base import Checkable, HelpdeskError
from fairdesk.helpdesk.registry import KINDS
from fairdesk.listener.base import AdapterError, ChecksCredentials
from fairdesk.listener.registry import ADAPTERS
from fairdesk.ticketing.db import DatabaseStartupError, make_engine, missing_sqlite_file, schema_state
from fairdesk.ticketing.mail import MailError, check_smtp

logger = logging.getLogger(__name__)

PUBLIC_URL_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report: ``ok`` True (passed), False (failed) or None (not configured, nothing to check)."""

    name: str
    ok: bool | None
    detail: str

    def line(self) -> str:
        mark = {True: "ok", False: "FAIL", None: "-"}[self.ok]
        return f"{mark:<5} {self.name:<24} {self.detail}"


def _attempt(name: str, check: Callable[[], str], expected: tuple[type[Exception], ...]) -> Check:
    try:
        return Check(name, True, check())
    except expected as exc:
        return Check(name, False, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # a check must report, never crash the report
        logger.debug("%s: check failed", name, exc_info=exc)
        return Check(name, False, f"unexpected {type(exc).__name__}: {exc}")


def check_database(settings: Settings) -> Check:
    url = settings.resolved_database_url
    if (path := missing_sqlite_file(url)) is not None:
        return Check("database", True, f"{path} does not exist yet; `fairdesk run` creates and migrates it")
    try:
        engine = make_engine(url)
    except DatabaseStartupError as exc:
        return Check("database", False, str(exc))
    try:
        current, heads, known = schema_state(engine)
    except DatabaseStartupError as exc:
        return Check("database", False, str(exc))
    finally:
        engine.dispose()
    if set(current) == set(heads):
        return Check("database", True, f"reachable; schema at the newest migration ({', '.join(heads)})")
    if not current:
        return Check("database", True, "reachable and empty; `fairdesk run` creates the schema at start")
    if all(rev in known for rev in current):
        return Check(
            "database", True, f"reachable; at {', '.join(current)}, `fairdesk run` migrates it to {', '.join(heads)}"
        )
    return Check(
        "database",
        False,
        f"schema is at {', '.join(current)}, which this fairdesk does not know (a newer version migrated it?)",
    )


def check_accounts(settings: Settings) -> Iterator[Check]:
    for platform, name, account in settings.accounts():
        label = f"{platform}/{name}"
        try:
            adapter = ADAPTERS[platform](name, account, settings)
        except (ConfigError, ValueError) as exc:
            yield Check(label, False, str(exc))
            continue
        try:
            if isinstance(adapter, ChecksCredentials):
                yield _attempt(label, adapter.check, (AdapterError,))
            else:
                yield Check(label, None, "this platform has no credentials check")
        finally:
            adapter.close()


def check_helpdesks(settings: Settings) -> Iterator[Check]:
    for name, helpdesk_settings in settings.helpdesk.items():
        label = f"helpdesk {name} ({helpdesk_settings.kind})"
        try:
            helpdesk = KINDS[helpdesk_settings.kind](name, helpdesk_settings, settings)
        except (ConfigError, ValueError) as exc:
            yield Check(label, False, str(exc))
            continue
        try:
            if isinstance(helpdesk, Checkable):
                yield _attempt(label, helpdesk.check, (HelpdeskError,))
            else:
                yield Check(label, None, "this kind has no check")
        finally:
            helpdesk.close()


def check_public_url(settings: Settings, *, transport: httpx.BaseTransport | None = None) -> Check:
    url = f"{settings.public_url}/healthz"
    try:
        with httpx.Client(timeout=PUBLIC_URL_TIMEOUT, transport=transport) as client:
            response = client.get(url)
    except httpx.HTTPError as exc:
        return Check("public URL", False, f"{url} does not answer ({exc}); is the daemon (and its proxy) running?")
    try:
        status = response.json().get("status")
    except (ValueError, AttributeError):
        status = None
    if response.status_code == 200 and status is not None:
        return Check("public URL", True, f"{url} answers: fairdesk is {status}")
    return Check("public URL", False, f"{url} answered {response.status_code}, not fairdesk's health page")


def check_mail(settings: Settings) -> Check:
    from fairdesk.app import mail_config

    config = mail_config(settings)
    if config is None:
        return Check("SMTP ([mail])", None, "not configured: agents' email replies are off")
    return _attempt("SMTP ([mail])", lambda: check_smtp(config), (MailError,))


def run_checks(config: Path | None) -> Iterator[Check]:
    """Every check in order; stops after the config check if the config cannot be used."""
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        yield Check("config", False, str(exc))
        return
    source = str(config) if config else "environment and embedded default"
    counts = f"{len(settings.accounts())} account(s), {len(settings.helpdesk)} helpdesk(s)"
    yield Check("config", True, f"{source}: {counts}")
    yield check_database(settings)
    yield from check_accounts(settings)
    yield from check_helpdesks(settings)
    yield check_public_url(settings)
    yield check_mail(settings)


__all__ = ["Check", "run_checks"]
