"""One poll of one account: fetch since the stored cursor, classify, record every outcome, advance the cursor."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import or_, update
from sqlmodel import Session, col

from fairdesk.listener.base import Adapter, AdapterError, AuthFailed, Batch, Mention, RateLimited
from fairdesk.ticketing.db import SessionFactory, transaction
from fairdesk.ticketing.intake import record_mention
from fairdesk.ticketing.leases import LEASE, is_dead
from fairdesk.ticketing.models import AccountState, utcnow
from fairdesk.ticketing.priority import Verdict

logger = logging.getLogger(__name__)

Classify = Callable[[Sequence[str]], Sequence[Verdict]]
RATE_LIMIT_OWNER = "(rate limited)"


@dataclass
class PollResult:
    platform: str
    account: str
    fetched: int = 0
    new: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    replies_queued: int = 0
    skipped_run: str | None = None  # why nothing was fetched (another daemon holds the lease, rate limited, ...)
    error: str | None = None
    rate_limited_for: float | None = None  # seconds the platform asked us to wait


def poll_once(
    adapter: Adapter, *, classify: Classify, sessions: SessionFactory, owner: str, now: datetime | None = None
) -> PollResult:
    """Run one pass for one account. Safe to run from several daemons at once: the account's lease is claimed
    through the database, and the cursor moves only in the transaction that records the batch's outcomes."""
    result = PollResult(adapter.platform, adapter.account)
    now = now or utcnow()
    cursor = _claim(sessions, adapter, owner, now)
    if cursor is False:
        result.skipped_run = "another daemon is polling this account"
        return result
    try:
        batch = adapter.fetch(cursor)
    except AdapterError as exc:
        _record_error(sessions, adapter, owner, exc)
        result.error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, RateLimited):
            result.skipped_run = f"rate limited for {exc.retry_after:.0f} s"
            result.rate_limited_for = max(exc.retry_after, 0.0)
        return result
    except Exception:
        _release(sessions, adapter, owner)
        raise

    try:
        verdicts = classify([m.text for m in batch.mentions]) if batch.mentions else []
        return _record(sessions, adapter, owner, batch, verdicts, result)
    except Exception:
        _release(sessions, adapter, owner)  # let the next run (ours or another daemon's) retry at once
        raise


def _record(
    sessions: SessionFactory,
    adapter: Adapter,
    owner: str,
    batch: Batch,
    verdicts: Sequence[Verdict],
    result: PollResult,
) -> PollResult:
    with transaction(sessions) as session:
        state = session.get(AccountState, (adapter.platform, adapter.account), with_for_update=True)
        if state is None or state.lease_owner != owner:
            # Our lease expired and someone else took over; drop this batch, they will fetch it again.
            result.skipped_run = "lease lost before recording"
            return result
        record_batch(session, batch.mentions, verdicts, result)
        was_unhealthy = not state.healthy
        state.cursor = batch.cursor
        state.last_success_at = utcnow()
        state.healthy = True
        state.last_error = None
        state.mentions_seen += result.new
        state.lease_owner = None
        state.lease_until = None
        if batch.gap:
            state.gap_at = utcnow()
            logger.warning("%s/%s: more new posts than the platform keeps; some were unreachable", *_key(adapter))
        session.add(state)
    if was_unhealthy:
        logger.info("%s/%s polling recovered", *_key(adapter))
    if result.new:
        outcomes = ", ".join(f"{count} {outcome}" for outcome, count in sorted(result.outcomes.items()))
        logger.info("%s/%s poll: %d new (%s)", *_key(adapter), result.new, outcomes)
    return result


def record_batch(
    session: Session,
    mentions: Sequence[Mention],
    verdicts: Sequence[Verdict],
    result: PollResult,
    *,
    reply_since: datetime | None = None,
) -> None:
    """Record each mention's outcome in the caller's transaction and count them in ``result``; the poll and
    `fairdesk backfill` both record through here. ``reply_since``: posts older than this get no reply."""
    for mention, verdict in zip(mentions, verdicts, strict=True):
        outcome = record_mention(session=session, mention=mention, verdict=verdict, reply_since=reply_since)
        result.fetched += 1
        result.replies_queued += int(outcome.reply_queued)  # also a keyword hit now known to be a mention
        if outcome.new:
            result.new += 1
            result.outcomes[outcome.outcome] += 1


def _key(adapter: Adapter) -> tuple[str, str]:
    return adapter.platform, adapter.account


def _claim(sessions: SessionFactory, adapter: Adapter, owner: str, now: datetime) -> str | None | Literal[False]:
    """Take the account's poll lease; return its cursor, or False if a live daemon holds it.

    The lease is short and renewed by its daemon's heartbeat, and a holder known to be dead (a killed daemon on this
    host) holds nothing: a restarted daemon polls at once."""
    with transaction(sessions) as session:
        state = session.get(AccountState, _key(adapter))
        if state is None:
            session.add(AccountState(platform=adapter.platform, account=adapter.account))
            holder = None
        else:
            holder = state.lease_owner
    free = [
        col(AccountState.lease_until).is_(None),
        col(AccountState.lease_until) < now,
        col(AccountState.lease_owner) == owner,
    ]
    if holder is not None and holder != RATE_LIMIT_OWNER and is_dead(holder):
        free.append(col(AccountState.lease_owner) == holder)
    with transaction(sessions) as session:
        claimed = session.exec(
            update(AccountState)
            .where(
                col(AccountState.platform) == adapter.platform,
                col(AccountState.account) == adapter.account,
                or_(*free),
            )
            .values(lease_owner=owner, lease_until=now + LEASE)
        )
        if claimed.rowcount != 1:
            return False
        state = session.get(AccountState, _key(adapter))
        assert state is not None
        if holder is not None and holder not in (owner, RATE_LIMIT_OWNER):
            logger.info("%s/%s: took over the poll lease of %s, which stopped", *_key(adapter), holder)
        return state.cursor


def _release(sessions: SessionFactory, adapter: Adapter, owner: str) -> None:
    with transaction(sessions) as session:
        session.execute(
            update(AccountState)
            .where(
                col(AccountState.platform) == adapter.platform,
                col(AccountState.account) == adapter.account,
                col(AccountState.lease_owner) == owner,
            )
            .values(lease_owner=None, lease_until=None)
        )


def _record_error(sessions: SessionFactory, adapter: Adapter, owner: str, exc: AdapterError) -> None:
    with transaction(sessions) as session:
        state = session.get(AccountState, _key(adapter))
        if state is None:
            return
        first = state.healthy and state.last_error is None
        state.last_error = f"{type(exc).__name__}: {exc}"[:500]
        state.last_error_at = utcnow()
        if isinstance(exc, AuthFailed):
            if state.healthy:
                logger.error("%s/%s: credentials refused (%s); fix them and restart", *_key(adapter), exc)
            state.healthy = False
        elif first:
            logger.warning("%s/%s: poll failed: %s", *_key(adapter), state.last_error)
        if isinstance(exc, RateLimited):
            # Hold the lease until the reset so that no daemon calls into the limit.
            state.lease_owner = RATE_LIMIT_OWNER
            state.lease_until = utcnow() + timedelta(seconds=max(exc.retry_after, 0))
        elif state.lease_owner == owner:
            state.lease_owner = None
            state.lease_until = None
        session.add(state)
