"""What the soak reads from the daemons' database while it runs: polls, lease holders, reply claimers, progress."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, create_engine, func, select
from sqlmodel import col

from fairdesk.jobs.poll import RATE_LIMIT_OWNER
from fairdesk.ticketing.models import AccountState, LedgerEntry, Outbox, ReplyState

logger = logging.getLogger(__name__)

SAMPLE_EVERY = 0.2  # seconds; well under the 1 s poll interval, so every successful poll is seen
VICTIM_SEARCH = 5.0  # seconds to look for a daemon inside a poll or a reply batch before killing any daemon
UNSETTLED = (ReplyState.PENDING, ReplyState.SENDING, ReplyState.UNCERTAIN)


def reader_engine(url: str) -> Engine:
    """A plain engine for reading: no BEGIN IMMEDIATE on SQLite, so the soak never takes the daemons' write lock."""
    if url.startswith("sqlite"):
        return create_engine(url, connect_args={"timeout": 30})
    return create_engine(url, pool_pre_ping=True)


def owner_pid(owner: str | None) -> int | None:
    """The pid inside a lease or claim owner: ``host/pid-namespace/pid/random`` (``host:pid:random`` before)."""
    if not owner or owner == RATE_LIMIT_OWNER:
        return None
    parts = owner.split("/" if "/" in owner else ":")
    return int(parts[-2]) if len(parts) >= 3 and parts[-2].isdigit() else None


def lease_holders(engine: Engine) -> set[int]:
    """Pids named in accounts' poll leases (the caller keeps the live ones: a dead daemon's lease may linger)."""
    with engine.connect() as conn:
        rows = conn.execute(select(col(AccountState.lease_owner)).where(col(AccountState.lease_owner).is_not(None)))
        return {pid for (owner,) in rows if (pid := owner_pid(owner)) is not None}


def reply_claimers(engine: Engine) -> set[int]:
    """Pids of daemons with outbox rows claimed and not yet settled (inside a reply batch)."""
    with engine.connect() as conn:
        rows = conn.execute(select(col(Outbox.claimed_by)).where(col(Outbox.state) == ReplyState.SENDING))
        return {pid for (owner,) in rows if (pid := owner_pid(owner)) is not None}


def find_victim(engine: Engine, finder: Callable[[Engine], set[int]], alive: set[int]) -> int | None:
    """The pid of a live daemon that ``finder`` sees at work, looked for up to VICTIM_SEARCH seconds."""
    deadline = time.monotonic() + VICTIM_SEARCH
    while time.monotonic() < deadline:
        busy = finder(engine) & alive
        if busy:
            return min(busy)
        time.sleep(0.01)
    return None


@dataclass
class Progress:
    ledger: dict[str, int]  # platform -> ledger rows
    sample_cursor: int
    unsettled_replies: int


def progress(engine: Engine) -> Progress:
    with engine.connect() as conn:
        platform = col(LedgerEntry.platform)
        ledger = {name: n for name, n in conn.execute(select(platform, func.count()).group_by(platform))}
        cursor = conn.execute(select(col(AccountState.cursor)).where(col(AccountState.platform) == "sample")).scalar()
        unsettled = conn.execute(
            select(func.count()).select_from(Outbox).where(col(Outbox.state).in_(UNSETTLED))
        ).scalar()
    return Progress(ledger, int(cursor or 0), int(unsettled or 0))


@dataclass
class PollWatcher:
    """Samples each account's last successful poll, for accounts with no request log (the sample platform)."""

    engine: Engine
    platform: str
    seen: set[datetime] = field(default_factory=set)
    stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="soak-polls", daemon=True)
        self._thread.start()

    def halt(self) -> None:
        self.stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def polls(self) -> list[float]:
        return sorted(moment.timestamp() for moment in set(self.seen))

    def _run(self) -> None:
        query = select(col(AccountState.last_success_at)).where(col(AccountState.platform) == self.platform)
        while not self.stop.wait(SAMPLE_EVERY):
            try:
                with self.engine.connect() as conn:
                    moments: list[datetime | None] = list(conn.execute(query).scalars())
            except Exception:  # a busy database must not end the watch; the next sample will do
                logger.debug("poll watcher: read failed", exc_info=True)
                continue
            self.seen.update(m for m in moments if m is not None)
