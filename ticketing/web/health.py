"""/healthz: per account, the last successful poll and the last error; and the reply outbox's backlog."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import func
from sqlmodel import select

from ticketing.db import transaction
from ticketing.models import AccountState, Outbox

router = APIRouter()


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


@router.get("/healthz")
def healthz(request: Request) -> dict[str, Any]:
    ctx = request.app.state.ctx
    with transaction(ctx.sessions) as session:
        states = {(s.platform, s.account): s for s in session.exec(select(AccountState))}
        outbox = dict(session.exec(select(Outbox.state, func.count()).group_by(Outbox.state)).all())  # type: ignore[arg-type]
    accounts = []
    for key in ctx.accounts:
        state = states.get(key)
        accounts.append(
            {
                "platform": key[0],
                "account": key[1],
                "healthy": state.healthy if state else True,
                "last_success_at": _iso(state.last_success_at) if state else None,
                "last_error": state.last_error if state else None,
                "last_error_at": _iso(state.last_error_at) if state else None,
                "gap_detected_at": _iso(state.gap_at) if state else None,
                "mentions_seen": state.mentions_seen if state else 0,
            }
        )
    degraded = any(not a["healthy"] for a in accounts)
    return {"status": "degraded" if degraded else "ok", "accounts": accounts, "replies": outbox}
