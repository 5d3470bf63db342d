"""/healthz: JSON always; `ok` only when every account polls on time, no job keeps failing and no reply is stuck."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import and_, func, or_
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from fairdesk.ticketing.db import transaction
from fairdesk.ticketing.models import AccountState, DeliveryState, HelpdeskDelivery, Outbox, ReplyState, utcnow

logger = logging.getLogger(__name__)

router = APIRouter()
RETRYABLE = (ReplyState.PENDING, ReplyState.UNCERTAIN)

STALE_INTERVALS = 3  # an account whose last successful poll is older than this many intervals is behind
STARTUP_GRACE = timedelta(seconds=10)  # a first poll may take this long beyond its intervals (login, paging)
OVERDUE = timedelta(seconds=60)  # a reply due this long ago and still not sent is stuck


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _account(key: tuple[str, str], state: AccountState | None, interval: float, since: datetime, now: datetime) -> dict:
    last = state.last_success_at if state else None
    late = now - (last or since) > timedelta(seconds=interval * STALE_INTERVALS) + (
        STARTUP_GRACE if not last else timedelta(0)
    )
    problems = []
    if state is not None and not state.healthy:
        problems.append(f"credentials refused: {state.last_error}")
    elif late:
        behind = f"no successful poll for {(now - (last or since)).total_seconds():.0f} s"
        problems.append(f"{behind} (last error: {state.last_error})" if state and state.last_error else behind)
    return {
        "platform": key[0],
        "account": key[1],
        "healthy": not problems,
        "problem": problems[0] if problems else None,
        "poll_seconds": interval,
        "last_success_at": _iso(last),
        "last_error": state.last_error if state else None,
        "last_error_at": _iso(state.last_error_at) if state else None,
        "gap_detected_at": _iso(state.gap_at) if state else None,
        "mentions_seen": state.mentions_seen if state else 0,
    }


def _helpdesks(session: Session, names: Sequence[str], now: datetime) -> tuple[list[dict[str, Any]], list[str]]:
    """Per configured helpdesk: deliveries by state, those waiting too long, and the newest reason."""
    out, problems = [], []
    for name in names:
        counts = dict(
            session.exec(
                select(HelpdeskDelivery.state, func.count())
                .where(HelpdeskDelivery.helpdesk == name)
                .group_by(HelpdeskDelivery.state)
            ).all()
        )
        waiting = col(HelpdeskDelivery.state).in_((DeliveryState.PENDING, DeliveryState.UNCERTAIN))
        late = and_(col(HelpdeskDelivery.helpdesk) == name, waiting, col(HelpdeskDelivery.created_at) < now - OVERDUE)
        overdue = int(session.exec(select(func.count()).select_from(HelpdeskDelivery).where(late)).one())
        newest = session.exec(
            select(HelpdeskDelivery.last_error)
            .where(HelpdeskDelivery.helpdesk == name, col(HelpdeskDelivery.last_error).is_not(None))
            .order_by(col(HelpdeskDelivery.id).desc())
            .limit(1)
        ).first()
        out.append({"helpdesk": name, **counts, "overdue": overdue, "last_error": newest})
        if overdue:
            problems.append(f"helpdesk {name}: {overdue} ticket(s) not filed after a minute (last error: {newest})")
        if counts.get(DeliveryState.FAILED):
            problems.append(f"helpdesk {name}: {counts[DeliveryState.FAILED]} ticket(s) refused (last: {newest})")
    return out, problems


def _read(ctx: Any, now: datetime) -> tuple[dict[tuple[str, str], AccountState], dict[str, int], int]:
    overdue = or_(
        and_(
            col(Outbox.state).in_((ReplyState.PENDING, ReplyState.UNCERTAIN)),
            col(Outbox.next_attempt_at) < now - OVERDUE,
        ),
        and_(col(Outbox.state) == ReplyState.SENDING, col(Outbox.claimed_until) < now - OVERDUE),
    )
    with transaction(ctx.sessions) as session:
        states = {(s.platform, s.account): s for s in session.exec(select(AccountState))}
        outbox = dict(session.exec(select(Outbox.state, func.count()).group_by(Outbox.state)).all())
        stuck = session.exec(select(func.count()).select_from(Outbox).where(overdue)).one()
    return states, outbox, int(stuck)


@router.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    ctx = request.app.state.ctx
    now = utcnow()
    jobs = ctx.jobs() if ctx.jobs is not None else []
    for job in jobs:
        job["last_ok_at"], job["last_error_at"] = _iso(job["last_ok_at"]), _iso(job["last_error_at"])
    try:
        states, outbox, stuck = _read(ctx, now)
        with transaction(ctx.sessions) as session:
            helpdesks, helpdesk_problems = _helpdesks(session, ctx.helpdesks, now)
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)  # the driver's own error, on DBAPIError
        reason = (str(orig or exc).splitlines() or ["?"])[0][:300]
        logger.debug("healthz: database unreachable", exc_info=True)
        body = {"status": "down", "problems": [f"database unreachable: {reason}"], "jobs": jobs}
        return JSONResponse(body, status_code=503)
    accounts = [
        _account(key, states.get(key), ctx.poll_seconds.get(key, 60.0), ctx.started_at, now) for key in ctx.accounts
    ]
    problems = [f"{a['platform']}/{a['account']}: {a['problem']}" for a in accounts if a["problem"]]
    problems += [f"job {j['job']} keeps failing: {j['last_error']}" for j in jobs if j["failing"]]
    problems += helpdesk_problems
    if stuck:
        problems.append(f"{stuck} public {'reply is' if stuck == 1 else 'replies are'} overdue by more than a minute")
    body = {
        "status": "degraded" if problems else "ok",
        "problems": problems,
        "accounts": accounts,
        "jobs": jobs,
        "replies": {**outbox, "overdue": stuck},
        "helpdesks": helpdesks,
    }
    return JSONResponse(body)
