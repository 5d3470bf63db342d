"""Agent accounts: argon2 password hashes, slow-down and lockout after repeated failures."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlmodel import Session, select

from ticketing.db import insert_if_absent
from ticketing.models import Agent, utcnow

logger = logging.getLogger(__name__)

LOCK_AFTER = 5
LOCK_FOR = timedelta(minutes=15)
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class AgentError(Exception):
    """An agent account cannot be created or used as asked."""


def _check_password(password: str) -> None:
    if len(password) < 10:
        raise AgentError("passwords need at least 10 characters")


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
    """Replace an agent's password (and lift any lockout), e.g. when the first-start password was lost."""
    agent = session.get(Agent, name)
    if agent is None:
        raise AgentError(f"there is no agent {name!r}")
    _check_password(password)
    agent.password_hash = _hasher.hash(password)
    agent.failed_logins = 0
    agent.locked_until = None
    session.add(agent)
    return agent


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


def authenticate(*, session: Session, name: str, password: str) -> Agent | None:
    """The agent if the password is right and the account is not locked; counts failures."""
    agent = session.get(Agent, name)
    if agent is None:
        # Spend the same time as a wrong password, so a login attempt does not tell which names exist.
        try:
            _hasher.verify(_DUMMY_HASH, password)
        except VerificationError:
            pass
        return None
    now = utcnow()
    if agent.locked_until is not None and agent.locked_until > now:
        return None
    try:
        _hasher.verify(agent.password_hash, password)
    except VerificationError:
        agent.failed_logins += 1
        if agent.failed_logins >= LOCK_AFTER:
            agent.locked_until = now + LOCK_FOR
            agent.failed_logins = 0
            logger.warning("agent %s locked for %s after repeated failed logins", name, LOCK_FOR)
        session.add(agent)
        return None
    agent.failed_logins = 0
    agent.locked_until = None
    session.add(agent)
    return agent
