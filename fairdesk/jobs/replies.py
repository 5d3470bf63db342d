"""The reply job: send what the outbox holds, at most once per post, across crashes and several daemons."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, update
from sqlmodel import col, select

from fairdesk.listener.base import (
    Adapter,
    AdapterError,
    FoundBy,
    Mention,
    MentionKind,
    PermanentError,
    RateLimited,
    Reply,
)
from fairdesk.listener.reply_text import render_reply
from fairdesk.ticketing.db import SessionFactory, transaction
from fairdesk.ticketing.leases import LEASE, dead_holders
from fairdesk.ticketing.models import EntryKind, Outbox, ReplyState, Ticket, TicketEntry, saved_id, utcnow
from fairdesk.ticketing.tokens import new_token

logger = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=1)
RETRYABLE = (ReplyState.PENDING, ReplyState.UNCERTAIN)
SentHook = Callable[[str, float], None]


@dataclass(frozen=True, slots=True)
class ReplyPolicy:
    template: str
    public_url: str
    max_attempts: int = 5
    backoff_seconds: float = 30.0


def mention_for(ticket: Ticket) -> Mention:
    """The mention a social ticket was opened from, rebuilt from what the ticket keeps."""
    return Mention(
        platform=ticket.platform or "",
        account=ticket.account or "",
        post_id=ticket.post_id or "",
        author_id=ticket.author_id or "",
        author_handle=ticket.author_handle or "",
        text=ticket.body,
        created_at=ticket.created_at,
        url=ticket.post_url or "",
        kind=MentionKind.MENTION,
        found_by=FoundBy(ticket.found_by or FoundBy.MENTION),
        conversation_id=ticket.conversation_id,
    )


def send_due_replies(
    adapters: Mapping[tuple[str, str], Adapter],
    *,
    sessions: SessionFactory,
    policy: ReplyPolicy,
    owner: str,
    now: datetime | None = None,
    limit: int | None = None,
    on_sent: SentHook | None = None,
) -> int:
    """Send every due reply this daemon can claim (at most ``limit``); return how many were sent.
    ``on_sent(platform, seconds)`` hears of each reply sent, with the time since it was queued (for metrics).

    Rows are claimed one at a time, just before each send, so a daemon that dies holds at most the one reply whose
    send may have happened; that one is settled by asking the platform before any resend."""
    sent = 0
    tried: set[int] = set()
    while limit is None or len(tried) < limit:
        claimed = _claim_one(sessions, owner, now or utcnow(), set(adapters), tried)
        if claimed is None:
            return sent
        outbox_id, stale = claimed
        tried.add(outbox_id)
        sent += _deliver(adapters, sessions, policy, outbox_id, stale=stale, on_sent=on_sent)
    return sent


def _claim_one(
    sessions: SessionFactory, owner: str, now: datetime, keys: set[tuple[str, str]], tried: set[int]
) -> tuple[int, bool] | None:
    if not keys:
        return None
    ours = or_(*(and_(col(Outbox.platform) == p, col(Outbox.account) == a) for p, a in sorted(keys)))
    with transaction(sessions) as session:
        dead = dead_holders(session, Outbox.claimed_by, col(Outbox.state) == ReplyState.SENDING, owner=owner)
        due = or_(
            and_(col(Outbox.state).in_(RETRYABLE), col(Outbox.next_attempt_at) <= now),
            and_(col(Outbox.state) == ReplyState.SENDING, col(Outbox.claimed_until) < now),
            and_(col(Outbox.state) == ReplyState.SENDING, col(Outbox.claimed_by).in_(dead)),
        )
        # One row, locked alone: a daemon never holds (or hides from the others) rows it is not about to send.
        # SKIP LOCKED passes over rows other daemons are claiming right now (PostgreSQL); ``tried`` holds rows this
        # pass already handled (e.g. one put back for a retry).
        query = (
            select(Outbox)
            .where(due, ours, col(Outbox.id).not_in(tried))
            .order_by(col(Outbox.id))
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        row = session.exec(query).first()
        if row is None:
            return None
        # A claim that expired, or a failure that may have posted: the platform is asked before any resend.
        stale = row.state in (ReplyState.SENDING, ReplyState.UNCERTAIN)
        # Conditional update: on SQLite (no row locks) this is what makes the claim exclusive.
        won = session.exec(
            update(Outbox)
            .where(col(Outbox.id) == row.id, due)
            .values(state=ReplyState.SENDING, claimed_by=owner, claimed_until=now + LEASE)
        )
        if won.rowcount == 1:
            return saved_id(row), stale
    # Another daemon took it between our read and our update (SQLite): try the next one.
    return _claim_one(sessions, owner, now, keys, tried | {saved_id(row)})


def _deliver(
    adapters: Mapping[tuple[str, str], Adapter],
    sessions: SessionFactory,
    policy: ReplyPolicy,
    outbox_id: int,
    *,
    stale: bool,
    on_sent: SentHook | None = None,
) -> int:
    with transaction(sessions) as session:
        row = session.get(Outbox, outbox_id)
        ticket = session.get(Ticket, row.ticket_id) if row else None
        assert row is not None and ticket is not None
        adapter = adapters[(row.platform, row.account)]
        mention = mention_for(ticket)
        ref = ticket.ref
        queued_at = row.created_at

    if stale:
        # A daemon claimed this before and never recorded the result: it may have posted. Ask the platform.
        try:
            remote_id = adapter.find_reply(mention)
        except AdapterError as exc:
            # Uncertain until the platform answers: the next try asks again before any send.
            with transaction(sessions) as session:
                row = session.get(Outbox, outbox_id)
                assert row is not None
                row.state = ReplyState.UNCERTAIN
                row.next_attempt_at = utcnow() + timedelta(seconds=policy.backoff_seconds)
                row.claimed_by = None
                row.claimed_until = None
                row.last_error = f"could not check for an earlier reply: {exc}"[:500]
                session.add(row)
            return 0
        if remote_id is not None:
            _mark_sent(sessions, outbox_id, remote_id, text=None)
            logger.info("reply for %s was already posted (%s); recorded it", ref, remote_id)
            return 0

    token, token_hash = new_token()
    with transaction(sessions) as session:
        row = session.get(Outbox, outbox_id)
        ticket = session.get(Ticket, row.ticket_id) if row else None
        assert row is not None and ticket is not None
        # The token is stored only as its hash; a new one replaces any from a send that never happened.
        ticket.token_hash = token_hash
        row.attempts += 1
        session.add_all([ticket, row])
    text = render_reply(policy.template, ref=ref, link=f"{policy.public_url}/t/{token}")
    try:
        remote_id = adapter.send_reply(Reply(account=mention.account, in_reply_to=mention, text=text))
    except PermanentError as exc:
        _fail(sessions, outbox_id, f"refused by {mention.platform}: {exc}")
        return 0
    except RateLimited as exc:
        _retry_later(sessions, outbox_id, policy, str(exc), refund=True, delay=exc.retry_after)
        return 0
    except AdapterError as exc:
        _retry_later(sessions, outbox_id, policy, str(exc), uncertain=True)
        return 0
    _mark_sent(sessions, outbox_id, remote_id, text=text.replace(token, "…"))
    if on_sent is not None:
        on_sent(mention.platform, (utcnow() - queued_at).total_seconds())
    logger.info("replied to %s post %s for ticket %s", mention.platform, mention.post_id, ref)
    return 1


def _mark_sent(sessions: SessionFactory, outbox_id: int, remote_id: str, *, text: str | None) -> None:
    with transaction(sessions) as session:
        row = session.get(Outbox, outbox_id)
        assert row is not None
        row.state = ReplyState.SENT
        row.remote_id = remote_id
        row.sent_at = utcnow()
        row.text = text or row.text
        row.claimed_until = None
        row.last_error = None
        session.add(row)
        session.add(
            TicketEntry(
                ticket_id=row.ticket_id, kind=EntryKind.REPLY, body="Public reply sent", actor="fairdesk", public=True
            )
        )


def _fail(sessions: SessionFactory, outbox_id: int, error: str) -> None:
    with transaction(sessions) as session:
        row = session.get(Outbox, outbox_id)
        assert row is not None
        row.state = ReplyState.FAILED
        row.last_error = error[:500]
        row.claimed_until = None
        session.add(row)
    logger.warning("reply %d failed for good: %s", outbox_id, error)


def _retry_later(
    sessions: SessionFactory,
    outbox_id: int,
    policy: ReplyPolicy,
    error: str,
    *,
    refund: bool = False,
    uncertain: bool = False,
    delay: float | None = None,
) -> None:
    """Put the reply back in the queue with exponential backoff, or fail it once attempts run out.
    ``refund``: the platform refused before judging it (rate limit), so the attempt does not count.
    ``uncertain``: the failure (timeout, 5xx) may have come after the post was made, so check before resending."""
    with transaction(sessions) as session:
        row = session.get(Outbox, outbox_id)
        assert row is not None
        if refund:
            row.attempts = max(row.attempts - 1, 0)
        if row.attempts >= policy.max_attempts:
            row.state = ReplyState.FAILED
            row.last_error = f"gave up after {row.attempts} attempts: {error}"[:500]
            logger.warning("reply %d failed after %d attempts: %s", outbox_id, row.attempts, error)
        else:
            if delay is None:
                base = policy.backoff_seconds * 2 ** max(row.attempts - 1, 0)
                delay = min(base, MAX_BACKOFF.total_seconds()) * random.uniform(0.8, 1.2)
            row.state = ReplyState.UNCERTAIN if uncertain else ReplyState.PENDING
            row.next_attempt_at = utcnow() + timedelta(seconds=delay)
            row.last_error = error[:500]
        row.claimed_until = None
        session.add(row)
