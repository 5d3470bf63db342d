"""Short leases that die with their daemon: who holds them, when a holder is known dead, and the heartbeat."""

from __future__ import annotations

import os
import secrets
import socket
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from fairdesk.ticketing.models import AccountState, Outbox, ReplyState

# A lease is renewed every HEARTBEAT while its daemon lives; one that is not renewed for LEASE is free. Short, so a
# daemon on another host that dies (or loses the database) holds nothing for long; a dead daemon on this host is
# recognised at once (see is_dead), so a restart carries on within seconds.
LEASE = timedelta(seconds=10)
HEARTBEAT_SECONDS = 2.5


@cache
def _pid_namespace() -> str:
    # Two containers can share a host name; a pid only means something inside its own pid namespace.
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "-"


def daemon_id() -> str:
    """Names this process in leases and claims: ``host/pid-namespace/pid/random``."""
    return f"{socket.gethostname()}/{_pid_namespace()}/{os.getpid()}/{secrets.token_hex(3)}"


def is_dead(owner: str | None) -> bool:
    """True only when ``owner`` is a daemon of this host and pid namespace whose process has exited.

    Anything else (another host, a name in another form, a live or unknowable process) is not known dead: its
    lease runs out by time instead."""
    if not owner:
        return False
    parts = owner.split("/")
    if len(parts) != 4 or parts[0] != socket.gethostname() or parts[1] != _pid_namespace():
        return False
    try:
        pid = int(parts[2])
    except ValueError:
        return False
    if pid == os.getpid():
        return False  # another daemon object in this very process (tests): alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # exists, owned by someone else
    return False


def dead_holders(session: Session, holder: Any, *where: Any, owner: str) -> list[str]:
    """The distinct values of ``holder`` (a claimed-by column, rows filtered by ``where``) that name daemons known
    dead: their claims are free at once rather than when their lease runs out."""
    found = session.exec(select(holder).where(col(holder).is_not(None), *where).distinct())
    return [h for h in found if h != owner and is_dead(h)]


def renew(session: Session, owner: str, now: datetime) -> None:
    """Extend every lease ``owner`` holds: its accounts' poll leases and the replies it is sending."""
    until = now + LEASE
    session.execute(update(AccountState).where(col(AccountState.lease_owner) == owner).values(lease_until=until))
    session.execute(
        update(Outbox)
        .where(col(Outbox.claimed_by) == owner, col(Outbox.state) == ReplyState.SENDING)
        .values(claimed_until=until)
    )


def release_all(session: Session, owner: str) -> None:
    """Free what ``owner`` holds at a clean stop. Replies mid-send stay claimed: their outcome is unknown."""
    session.execute(
        update(AccountState).where(col(AccountState.lease_owner) == owner).values(lease_owner=None, lease_until=None)
    )


__all__ = ["HEARTBEAT_SECONDS", "LEASE", "daemon_id", "dead_holders", "is_dead", "release_all", "renew"]
