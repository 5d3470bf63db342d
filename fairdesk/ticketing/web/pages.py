"""What every page shares: the context handed in by the composition root, templates, CSRF and rendering."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from fairdesk.ticketing.db import SessionFactory
from fairdesk.ticketing.mail import MailConfig
from fairdesk.ticketing.models import utcnow
from fairdesk.ticketing.priority import Verdict
from fairdesk.ticketing.web.limits import RateLimits

HERE = Path(__file__).resolve().parent


MAX_ID = 2**31 - 1  # ids are INTEGER columns (PostgreSQL int4): anything larger is no row, not an overflow


class TicketNotFound(Exception):
    """No ticket behind this link (or the link is malformed): the same 404 as any missing page."""


def row_id(raw: str | int) -> int | None:
    """A database id from a URL or form, or None when it cannot be one (not digits, 0, out of range)."""
    text = str(raw)
    if not (text.isascii() and text.isdigit() and len(text) <= 10):
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ID else None


@dataclass
class WebContext:
    """Everything the pages need, handed in by the composition root."""

    sessions: SessionFactory
    classify: Callable[[Sequence[str]], Sequence[Verdict]]
    public_url: str
    secret_key: str
    blind_triage: bool = True
    accounts: Sequence[tuple[str, str]] = ()  # configured (platform, account) pairs, for /healthz
    poll_seconds: Mapping[tuple[str, str], float] = field(default_factory=dict)  # each account's poll interval
    jobs: Callable[[], list[dict[str, Any]]] | None = None  # the daemon's jobs and how each last went, for /healthz
    started_at: datetime = field(default_factory=utcnow)  # accounts not yet polled are judged from here
    helpdesks: Sequence[str] = ()  # configured helpdesk names, for /healthz and the ticket view
    sample_replies: Callable[[], list[dict[str, Any]]] | None = None  # the sample platform's posted replies
    sample_posts: Callable[[], list[dict[str, Any]]] | None = None
    mail: MailConfig | None = None  # SMTP for agents' email replies; None: replying by email is off
    limits: RateLimits = field(default_factory=RateLimits)
    trusted_proxies: Sequence[str] = ()  # addresses or networks whose X-Forwarded-For is believed
    session_idle: timedelta = timedelta(minutes=120)  # an agent session unused this long has ended


templates = Jinja2Templates(directory=str(HERE / "templates"))


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return str(token)


def csrf_ok(request: Request, submitted: str | None) -> bool:
    expected = request.session.get("csrf")
    return bool(expected and submitted and secrets.compare_digest(str(expected), submitted))


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("csrf", csrf_token(request))
    return templates.TemplateResponse(request, name, context, status_code=status_code)
