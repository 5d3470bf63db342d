"""Agents' login and logout: slow-downs instead of a lock, the hash outside any transaction, server-side sessions."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Annotated

import anyio
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool

from fairdesk.ticketing.agents import credentials, password_matches, use_totp_step
from fairdesk.ticketing.db import transaction
from fairdesk.ticketing.logins import (
    PER_ACCOUNT,
    PER_CLIENT,
    clear_failures,
    end_session,
    failure_key,
    open_session,
    record_failure,
    session_agent,
    wait_seconds,
)
from fairdesk.ticketing.totp import matching_step
from fairdesk.ticketing.web.limits import check, client_key
from fairdesk.ticketing.web.pages import WebContext, csrf_ok, render

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/agent")

DEVICE_COOKIE = "fairdesk_device"
DEVICE_MAX_AGE = 90 * 24 * 3600  # a browser an agent logged in from is known for this long
FAILED = "Wrong name, password or code, or too many tries: wait a few seconds and try again."


@dataclass(frozen=True, slots=True)
class _Attempt:
    password_hash: str | None
    totp_secret: str | None
    throttled: bool
    keys: tuple[str, str]  # (account, client) slow-down keys


def _ctx(request: Request) -> WebContext:
    return request.app.state.ctx


def _hashing(request: Request) -> anyio.CapacityLimiter:
    # Hashes run on their own few threads, one per core: a burst of logins then queues here and never takes the
    # threads every other page is served from.
    limiter = getattr(request.app.state, "hashing", None)
    if limiter is None:
        limiter = request.app.state.hashing = anyio.CapacityLimiter(os.cpu_count() or 2)
    return limiter


def _devices(ctx: WebContext) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(ctx.secret_key, salt="fairdesk-device")


def _known_device(request: Request, ctx: WebContext, name: str) -> bool:
    """Whether this browser logged in as ``name`` before: then others' failures for the name do not slow it down."""
    cookie = request.cookies.get(DEVICE_COOKIE, "")
    try:
        return bool(cookie) and _devices(ctx).loads(cookie, max_age=DEVICE_MAX_AGE) == name
    except BadSignature:
        return False


def current_agent(request: Request) -> str | None:
    """The agent whose live session the request carries, or None (no session, logged out, revoked, idle, locked)."""
    raw = request.session.get("sid")
    if not raw:
        return None
    ctx = _ctx(request)
    with transaction(ctx.sessions) as session:
        return session_agent(session=session, raw=str(raw)[:128], idle=ctx.session_idle)


def _begin(ctx: WebContext, name: str, client: str, known_device: bool) -> _Attempt:
    keys = (failure_key(ctx.secret_key, "account", name), failure_key(ctx.secret_key, "client", client))
    now = time.time()
    with transaction(ctx.sessions) as session:
        found = credentials(session=session, name=name)
        wait = wait_seconds(session=session, key=keys[1], rule=PER_CLIENT, now=now)
        if not known_device:
            wait = max(wait, wait_seconds(session=session, key=keys[0], rule=PER_ACCOUNT, now=now))
    return _Attempt(found.password_hash, found.totp_secret, wait > 0, keys)


def _finish(ctx: WebContext, attempt: _Attempt, name: str, client: str, ok: bool, step: int | None) -> str | None:
    """Count a failure, or spend the TOTP code's time step (a code already used fails) and open the session."""
    now = time.time()
    with transaction(ctx.sessions) as session:
        if ok and step is not None and not use_totp_step(session=session, name=name, step=step):
            logger.warning("agent %r tried a two-factor code that was already used", name)
            ok = False
        if not ok:
            # A refused try while throttled still counts against the client (not the account): ignoring the wait
            # only makes that client wait longer.
            if not attempt.throttled:
                record_failure(session=session, key=attempt.keys[0], rule=PER_ACCOUNT, now=now)
            record_failure(session=session, key=attempt.keys[1], rule=PER_CLIENT, now=now)
            return None
        clear_failures(session=session, keys=list(attempt.keys))
        return open_session(session=session, agent=name, client=client, idle=ctx.session_idle)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return render(request, "login.html")


@router.post("/login", response_model=None)
async def login(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    code: Annotated[str, Form()] = "",
) -> Response:
    ctx = _ctx(request)
    if not csrf_ok(request, csrf):
        return render(request, "login.html", status_code=403, error="This form expired. Please try again.")
    name, client = name[:64], client_key(request)
    await run_in_threadpool(
        check, ctx.sessions, ctx.secret_key, [("login-client", client, ctx.limits.login_per_client)]
    )
    attempt = await run_in_threadpool(_begin, ctx, name, client, _known_device(request, ctx, name))
    # Every attempt (unknown name, wrong password, throttled, locked) verifies one hash, so all take as long.
    matches = await anyio.to_thread.run_sync(
        password_matches, attempt.password_hash, password[:1024], limiter=_hashing(request)
    )
    step = matching_step(attempt.totp_secret, code[:16]) if attempt.totp_secret is not None else None
    second = attempt.totp_secret is None or step is not None
    ok = matches and second and not attempt.throttled
    sid = await run_in_threadpool(_finish, ctx, attempt, name, client, ok, step)
    if sid is None:
        logger.info("failed agent login for %r%s", name, " (slowed down)" if attempt.throttled else "")
        return render(request, "login.html", status_code=401, error=FAILED)
    request.session.clear()
    request.session["sid"] = sid
    response = RedirectResponse("/agent", status_code=303)
    response.set_cookie(
        DEVICE_COOKIE,
        _devices(ctx).dumps(name),
        max_age=DEVICE_MAX_AGE,
        path="/agent/login",
        httponly=True,
        samesite="lax",
        secure=ctx.public_url.startswith("https://"),
    )
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> RedirectResponse:
    if csrf_ok(request, csrf):
        raw = request.session.get("sid")
        if raw:
            with transaction(_ctx(request).sessions) as session:
                end_session(session=session, raw=str(raw)[:128])
        request.session.clear()
    return RedirectResponse("/agent/login", status_code=303)
