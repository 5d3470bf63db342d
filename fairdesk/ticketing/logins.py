"""Agents' logins: growing delays after failures, per account name and per client, and server-side sessions."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from fairdesk.ticketing.models import Agent, AgentSession, LoginFailure, utcnow

SESSION_BYTES = 32  # 256 random bits in the cookie
SESSION_MAX_AGE = timedelta(hours=12)  # an agent logs in once per working day, however active
TOUCH_EVERY = timedelta(seconds=60)  # last_seen_at is written at most this often, not on every page


@dataclass(frozen=True, slots=True)
class Slowdown:
    """After ``free`` failures each try waits ``first`` seconds, doubling per failure up to ``cap``; a quiet
    ``forget`` seconds starts the count again."""

    free: int
    first: float
    cap: float
    forget: float

    def delay(self, failures: int) -> float:
        return 0.0 if failures < self.free else min(self.cap, self.first * 2.0 ** (failures - self.free))


# The account's own delay stays short: anyone can fail a login for any name, and that must not keep its agent out.
# The client's grows to 15 minutes: that is where a guesser sits.
PER_ACCOUNT = Slowdown(free=3, first=1.0, cap=3.0, forget=3600.0)
PER_CLIENT = Slowdown(free=5, first=1.0, cap=900.0, forget=24 * 3600.0)
FORGET_ALL = max(PER_ACCOUNT.forget, PER_CLIENT.forget)  # a failure older than this counts for nothing


def failure_key(secret: str, kind: str, value: str) -> str:
    """A keyed hash of an account name or client address, so the table holds neither."""
    digest = hmac.new(secret.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
    return f"{kind[:1]}:{digest[:60]}"


def wait_seconds(*, session: Session, key: str, rule: Slowdown, now: float) -> float:
    """How long until ``key`` may try again (0: now)."""
    row = session.get(LoginFailure, key)
    if row is None or now - row.last_failed > rule.forget:
        return 0.0
    return max(0.0, row.last_failed + rule.delay(row.failures) - now)


def record_failure(*, session: Session, key: str, rule: Slowdown, now: float) -> None:
    """One more failure for ``key``, atomically on SQLite and PostgreSQL (a count older than ``forget`` restarts).

    Rows no rule remembers any more are deleted on the way, so guesses from many addresses cannot grow the table
    for ever."""
    session.execute(delete(LoginFailure).where(col(LoginFailure.last_failed) < now - FORGET_ALL))
    insert_fn = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    failures, last = col(LoginFailure.failures), col(LoginFailure.last_failed)
    stmt = (
        insert_fn(LoginFailure)
        .values(key=key, failures=1, last_failed=now)
        .on_conflict_do_update(
            index_elements=["key"],
            set_={"failures": case((last < now - rule.forget, 1), else_=failures + 1), "last_failed": now},
        )
    )
    session.execute(stmt)


def clear_failures(*, session: Session, keys: list[str]) -> None:
    session.execute(delete(LoginFailure).where(col(LoginFailure.key).in_(keys)))


def _hash_id(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()


def open_session(*, session: Session, agent: str, client: str, idle: timedelta) -> str:
    """A new session for ``agent``; returns the random id for the cookie (stored only as its hash)."""
    now = utcnow()
    stale = (col(AgentSession.last_seen_at) < now - idle) | (col(AgentSession.created_at) < now - SESSION_MAX_AGE)
    session.execute(delete(AgentSession).where(col(AgentSession.agent) == agent, stale))
    raw = secrets.token_urlsafe(SESSION_BYTES)
    session.add(AgentSession(id_hash=_hash_id(raw), agent=agent, client=client[:64], created_at=now, last_seen_at=now))
    return raw


def session_agent(*, session: Session, raw: str, idle: timedelta, now: datetime | None = None) -> str | None:
    """The agent a session id belongs to, if the session is live and the agent may still log in; else None."""
    now = now or utcnow()
    row = session.get(AgentSession, _hash_id(raw))
    if row is None:
        return None
    agent = session.get(Agent, row.agent)
    if agent is None or agent.disabled or row.last_seen_at < now - idle or row.created_at < now - SESSION_MAX_AGE:
        session.delete(row)
        return None
    if row.last_seen_at < now - TOUCH_EVERY:
        row.last_seen_at = now
        session.add(row)
    return row.agent


def end_session(*, session: Session, raw: str) -> None:
    session.execute(delete(AgentSession).where(col(AgentSession.id_hash) == _hash_id(raw)))


def sessions_of(*, session: Session, agent: str) -> list[AgentSession]:
    query = select(AgentSession).where(AgentSession.agent == agent).order_by(col(AgentSession.created_at))
    return list(session.exec(query))


def revoke_sessions(*, session: Session, agent: str) -> int:
    """End every session of ``agent``; returns how many there were."""
    rows = sessions_of(session=session, agent=agent)
    for row in rows:
        session.delete(row)
    return len(rows)
