"""What becomes of each fetched mention: a ticket, an append to a ticket, or a skip with a reason."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from fairdesk.listener.base import FoundBy, Mention, MentionKind
from fairdesk.ticketing.categories import category_for
from fairdesk.ticketing.deliveries import queue_deliveries
from fairdesk.ticketing.incidents import (
    authors_open_ticket,
    link_new_ticket,
    lock_incident_of,
    raise_priority,
    rules_of,
    window_words,
)
from fairdesk.ticketing.models import (
    Channel,
    EntryKind,
    LedgerEntry,
    OptOut,
    Outbox,
    Outcome,
    ReplyState,
    SkipReason,
    Ticket,
    TicketEntry,
    saved_id,
    utcnow,
)
from fairdesk.ticketing.priority import Verdict, is_complaint, priority_for

logger = logging.getLogger(__name__)

SUBJECT_CHARS = 80
CUSTOMER_ACTOR = "customer"  # TicketEntry.actor of what the customer did (posted again, added details)
_HANDLES = re.compile(r"(?:^|\s)[@＠][\w.\-]+")
_OPT_OUT_WORDS = {"stop", "unsubscribe", "opt out", "optout", "stop replying", "no more replies"}


@dataclass(frozen=True, slots=True)
class IntakeResult:
    outcome: str
    reason: str | None
    ticket_id: int | None
    reply_queued: bool
    new: bool  # False when the mention was already in the ledger (a repeated batch)


def storable(text: str) -> str:
    """The text as given, except NUL, which PostgreSQL cannot store in a text column."""
    return text.replace("\x00", "\ufffd")


def strip_handles(text: str) -> str:
    return _HANDLES.sub(" ", text).strip()


def is_opt_out(text: str) -> bool:
    words = re.sub(r"[^\w\s]", " ", strip_handles(text).lower())
    return " ".join(words.split()) in _OPT_OUT_WORDS


def subject_for(text: str) -> str:
    line = " ".join(strip_handles(text).split())
    if not line:
        return "(no text)"
    return line if len(line) <= SUBJECT_CHARS else line[: SUBJECT_CHARS - 1] + "…"


def reply_allowed(mention: Mention, *, opted_out: bool) -> bool:
    """Platform rules: reply only to posts that @mention the account, never to keyword hits or reposts; honour stop."""
    return (
        mention.addresses_account
        and mention.found_by == FoundBy.MENTION
        and mention.kind != MentionKind.REPOST
        and not mention.from_account
        and not opted_out
    )


def record_mention(
    *, session: Session, mention: Mention, verdict: Verdict, reply_since: datetime | None = None
) -> IntakeResult:
    """Record one mention and its outcome in the caller's transaction. Idempotent per (platform, account, post).

    ``reply_since``: a post older than this is ticketed as usual but gets no public reply (`fairdesk backfill`)."""
    may_reply = reply_since is None or mention.created_at >= reply_since
    existing = session.exec(
        select(LedgerEntry).where(
            LedgerEntry.platform == mention.platform,
            LedgerEntry.account == mention.account,
            LedgerEntry.post_id == mention.post_id,
        )
    ).first()
    if existing is not None:
        queued = _upgrade_to_mention(session, existing, mention, may_reply) if _is_upgrade(existing, mention) else False
        return IntakeResult(existing.outcome, existing.reason, existing.ticket_id, queued, new=False)

    outcome, reason, ticket, queued = _decide_and_apply(session, mention, verdict, may_reply)
    session.add(
        LedgerEntry(
            platform=mention.platform,
            account=mention.account,
            post_id=mention.post_id,
            kind=mention.kind,
            found_by=mention.found_by,
            author_handle=mention.author_handle,
            outcome=outcome,
            reason=reason,
            ticket_id=ticket.id if ticket else None,
            label=verdict.label,
            score=verdict.score,
            text=storable(mention.text),
            posted_at=mention.created_at,
        )
    )
    return IntakeResult(outcome, reason, ticket.id if ticket else None, queued, new=True)


def _is_upgrade(existing: LedgerEntry, mention: Mention) -> bool:
    return existing.found_by == FoundBy.SEARCH and mention.found_by == FoundBy.MENTION


def _upgrade_to_mention(session: Session, existing: LedgerEntry, mention: Mention, may_reply: bool) -> bool:
    """A post first recorded as a keyword hit is now known to @mention the account: one entry, now a mention.

    Search can see a post before the mentions timeline does, and a keyword hit gets no reply; without this the
    mention would never be answered. The outbox's unique (platform, in_reply_to) stays the guard against a second
    reply; the check below only keeps a repeated batch from tripping it.
    """
    existing.found_by = FoundBy.MENTION
    session.add(existing)
    if existing.outcome != Outcome.TICKETED or existing.ticket_id is None:
        return False  # skipped, appended or merged posts get no reply whoever found them
    ticket = session.get(Ticket, existing.ticket_id)
    if ticket is None or ticket.post_id != mention.post_id:
        return False
    ticket.found_by = FoundBy.MENTION  # the reply job rebuilds the mention from the ticket
    session.add(ticket)
    opted_out = session.get(OptOut, (mention.platform, mention.author_id)) is not None
    if not (may_reply and reply_allowed(mention, opted_out=opted_out)):
        return False
    queued = session.exec(
        select(Outbox.id).where(Outbox.platform == mention.platform, Outbox.in_reply_to == mention.post_id)
    ).first()
    if queued is not None:
        return False
    session.add(
        Outbox(
            ticket_id=saved_id(ticket), platform=mention.platform, account=mention.account, in_reply_to=mention.post_id
        )
    )
    logger.info(
        "%s post %s, first found by keyword search, mentions %s: reply queued for ticket %s",
        mention.platform,
        mention.post_id,
        mention.account,
        ticket.ref,
    )
    return True


def _decide_and_apply(
    session: Session, mention: Mention, verdict: Verdict, may_reply: bool
) -> tuple[str, str | None, Ticket | None, bool]:
    if mention.from_account:
        return Outcome.SKIPPED, SkipReason.OWN_POST, None, False
    if mention.kind == MentionKind.REPOST:
        return Outcome.SKIPPED, SkipReason.REPOST, None, False
    if is_opt_out(mention.text):
        _opt_out(session, mention)
        return Outcome.SKIPPED, SkipReason.OPTED_OUT, None, False

    same_post = session.exec(
        select(Ticket).where(Ticket.platform == mention.platform, Ticket.post_id == mention.post_id)
    ).first()
    if same_post is not None:
        return Outcome.MERGED, "already ticketed through another account", same_post, False

    thread = _thread_ticket(session, mention)
    if thread is not None:
        _append(session, thread, mention)
        return Outcome.APPENDED, None, thread, False

    if not is_complaint(verdict):
        return Outcome.SKIPPED, SkipReason.NOT_COMPLAINT, None, False

    # The same person complaining again, in a new thread, within the window: one person, one ticket, one reply.
    own = authors_open_ticket(
        session,
        platform=mention.platform,
        author_id=mention.author_id,
        at=mention.created_at,
        text=mention.text,
        category=category_for(mention.text),
    )
    if own is not None:
        lock_incident_of(session, own)  # before the ticket's row: the order every incident change takes
        _append(session, own, mention)
        raise_priority(session, own, priority_for(verdict))  # what they say now may be more urgent
        why = f"the author's open ticket (window {window_words(rules_of(session).window)})"
        return Outcome.APPENDED, why, own, False

    ticket = open_social_ticket(session=session, mention=mention, verdict=verdict)
    link_new_ticket(session, ticket)
    opted_out = session.get(OptOut, (mention.platform, mention.author_id)) is not None
    queued = may_reply and reply_allowed(mention, opted_out=opted_out)
    if queued:
        session.add(
            Outbox(
                ticket_id=saved_id(ticket),
                platform=mention.platform,
                account=mention.account,
                in_reply_to=mention.post_id,
            )
        )
    return Outcome.TICKETED, None, ticket, queued


def _append(session: Session, ticket: Ticket, mention: Mention) -> None:
    session.add(
        TicketEntry(
            ticket_id=saved_id(ticket),
            kind=EntryKind.POST,
            body=storable(mention.text),
            actor=CUSTOMER_ACTOR,  # never the handle: agents see the customer through the pseudonym
            public=True,
            post_id=mention.post_id,
        )
    )
    ticket.updated_at = utcnow()
    session.add(ticket)


def _thread_ticket(session: Session, mention: Mention) -> Ticket | None:
    """The customer's own earlier ticket in this thread, if any (other people in the thread get their own)."""
    refs = [r for r in (mention.conversation_id, mention.reply_to_id) if r]
    if not refs:
        return None
    return session.exec(
        select(Ticket)
        .where(
            Ticket.platform == mention.platform,
            Ticket.author_id == mention.author_id,
            or_(col(Ticket.conversation_id).in_(refs), col(Ticket.post_id).in_(refs)),
        )
        .order_by(col(Ticket.id))
    ).first()


def open_social_ticket(*, session: Session, mention: Mention, verdict: Verdict) -> Ticket:
    ticket = Ticket(
        channel=Channel.SOCIAL,
        priority=priority_for(verdict),
        subject=subject_for(storable(mention.text)),
        body=storable(mention.text),
        category=category_for(mention.text),
        platform=mention.platform,
        account=mention.account,
        post_id=mention.post_id,
        post_url=mention.url,
        author_id=mention.author_id,
        author_handle=mention.author_handle,
        conversation_id=mention.conversation_id or mention.post_id,
        found_by=mention.found_by,
        label=verdict.label,
        score=verdict.score,
        severity=verdict.severity,
        model_version=verdict.model_version,
        triage_reason=verdict.triage_reason,
        created_at=mention.created_at,
    )
    session.add(ticket)
    session.flush()
    queue_deliveries(session, ticket)
    logger.info("ticket %s opened from %s post %s", ticket.ref, mention.platform, mention.post_id)
    return ticket


def _opt_out(session: Session, mention: Mention) -> None:
    if session.get(OptOut, (mention.platform, mention.author_id)) is None:
        session.add(OptOut(platform=mention.platform, author_id=mention.author_id))
    tickets = select(Ticket.id).where(Ticket.platform == mention.platform, Ticket.author_id == mention.author_id)
    session.execute(
        update(Outbox)
        .where(col(Outbox.ticket_id).in_(tickets), col(Outbox.state) == ReplyState.PENDING)
        .values(state=ReplyState.CANCELLED, last_error="author opted out")
    )
    logger.info("%s author %s opted out of replies", mention.platform, mention.author_id)
