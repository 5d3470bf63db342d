"""Agent accounts: argon2 password hashes, removal and locking by the admin, TOTP two-factor per agent."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import update
from sqlmodel import Session, col, select

from fairdesk.ticketing.db import insert_if_absent
from fairdesk.ticketing.logins import revoke_sessions
from fairdesk.ticketing.models import Agent
from fairdesk.ticketing.totp import matching_step, new_secret

logger = logging.getLogger(__name__)

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class AgentError(Exception):
    """An agent account cannot be created or used as asked."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """What checking a login needs, read in a short transaction so the slow hash runs outside any."""

    password_hash: str | None  # None: no such agent, or locked by the admin (checked against a dummy hash)
    totp_secret: str | None


def _check_password(password: str) -> None:
    if len(password) < 10:
        raise AgentError("passwords need at least 10 characters")


def _get(session: Session, name: str) -> Agent:
    agent = session.get(Agent, name)
    if agent is None:
        raise AgentError(f"there is no agent {name!r}")
    return agent


def add_agent(*, session: Session, name: str, password: str) -> Agent:
    if not name or len(name) > 64 or not name.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise AgentError("agent names are 1-64 letters, digits, '.', '_' or '-'")
    _check_password(password)
    if session.get(Agent, name) is not None:
        raise AgentError(f"agent {name!r} already exists")
    agent = Agent(name=name, password_hash=_hasher.hash(password))
    session.add(agent)
    return agent


def set_password(*, session: Session, name: str, password: str) -> Agent:
    """Replace an agent's password (e.g. the lost first-start one) and end every session it had."""
    agent = _get(session, name)
    _check_password(password)
    agent.password_hash = _hasher.hash(password)
    session.add(agent)
    revoke_sessions(session=session, agent=name)
    return agent


def remove_agent(*, session: Session, name: str) -> None:
    """Delete the account and its sessions; what it did stays on the tickets under its name."""
    agent = _get(session, name)
    revoke_sessions(session=session, agent=name)
    session.flush()
    session.delete(agent)


def set_locked(*, session: Session, name: str, locked: bool) -> int:
    """Lock (no login, every session ended) or unlock an account; returns how many sessions were ended."""
    agent = _get(session, name)
    agent.disabled = locked
    session.add(agent)
    return revoke_sessions(session=session, agent=name) if locked else 0


def require_totp(*, session: Session, name: str) -> str:
    """Give the agent a new TOTP secret (returned once, for their app); from now on a login needs its code."""
    agent = _get(session, name)
    agent.totp_secret = new_secret()
    agent.totp_last_step = None
    session.add(agent)
    revoke_sessions(session=session, agent=name)
    return agent.totp_secret


def drop_totp(*, session: Session, name: str) -> None:
    agent = _get(session, name)
    agent.totp_secret = None
    session.add(agent)


def ensure_first_agent(*, session: Session) -> tuple[str, str] | None:
    """On a database with no agents, create 'admin' with a random password and return it (shown once).

    Several daemons may start at once: the insert is skipped if another got there first, and only the daemon
    whose row went in gets the password back, so exactly one prints it.
    """
    if session.exec(select(Agent).limit(1)).first() is not None:
        return None
    name, password = "admin", secrets.token_urlsafe(12)
    if not insert_if_absent(session, Agent(name=name, password_hash=_hasher.hash(password))):
        return None
    return name, password


def credentials(*, session: Session, name: str) -> Credentials:
    agent = session.get(Agent, name)
    if agent is None or agent.disabled:
        return Credentials(None, None)
    return Credentials(agent.password_hash, agent.totp_secret)


def password_matches(password_hash: str | None, password: str) -> bool:
    """The slow part of a login (argon2). Unknown and locked names verify a dummy hash, so every answer takes as long.

    Call it outside any database transaction: it takes ~0.3 s of CPU.
    """
    try:
        _hasher.verify(password_hash or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return password_hash is not None


def authenticate(*, session: Session, name: str, password: str, code: str = "") -> Agent | None:
    """The agent if the password (and TOTP code, where required) is right. For the command line and tests; the web
    login reads ``credentials`` and checks the hash outside its transactions, with slow-downs (ticketing.logins)."""
    found = credentials(session=session, name=name)
    if not password_matches(found.password_hash, password):
        return None
    if found.totp_secret is not None:
        step = matching_step(found.totp_secret, code)
        if step is None or not use_totp_step(session=session, name=name, step=step):
            return None
    return session.get(Agent, name)


def use_totp_step(*, session: Session, name: str, step: int) -> bool:
    """Spend the TOTP time step ``step`` for ``name``: False if it, or a later one, was used already.

    One conditional UPDATE, so two logins racing with the same code cannot both win."""
    last = col(Agent.totp_last_step)
    won = session.exec(
        update(Agent).where(col(Agent.name) == name, last.is_(None) | (last < step)).values(totp_last_step=step)
    )
    return won.rowcount == 1
