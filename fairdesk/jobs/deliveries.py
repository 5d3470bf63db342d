"""The delivery job: file each ticket once per helpdesk, then forward its later events; across crashes and daemons."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, or_, update
from sqlmodel import Session, col, select

from fairdesk.helpdesk.base import Event, EventKind, Filing, Helpdesk, Refused, Unavailable
from fairdesk.jobs.sync import HELPDESK_ACTOR
from fairdesk.ticketing.db import SessionFactory, transaction
from fairdesk.ticketing.leases import LEASE, dead_holders
from fairdesk.ticketing.models import DeliveryState, EntryKind, HelpdeskDelivery, Ticket, TicketEntry, saved_id, utcnow
from fairdesk.ticketing.store import pseudonym

logger = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=1)
FORWARDED = {EntryKind.POST: EventKind.FOLLOWUP, EntryKind.CUSTOMER_DETAILS: EventKind.DETAILS}
FORWARDED_KINDS = (*FORWARDED, EntryKind.STATUS)


@dataclass(frozen=True, slots=True)
class FilingPolicy:
    public_url: str
    blind_triage: bool = True
    retry_seconds: Mapping[str, float] | None = None  # per helpdesk; default 15 s

    def first_retry(self, helpdesk: str) -> float:
        return (self.retry_seconds or {}).get(helpdesk, 15.0)


def filing_for(ticket: Ticket, policy: FilingPolicy) -> Filing:
    """What the helpdesk is told about a ticket: its content and why it was filed; never who the poster is to others.

    Under blind triage the customer is the pseudonym and the post's link is left out (X and Bluesky links name the
    author); the agent link leads to fairdesk, where revealing the handle is logged."""
    if ticket.platform:
        customer = pseudonym(ticket) if policy.blind_triage else f"@{ticket.author_handle}"
    else:
        customer = pseudonym(ticket) if policy.blind_triage else (ticket.contact_email or "web form")
    return Filing(
        ref=ticket.ref,
        subject=ticket.subject,
        text=ticket.body,
        channel=ticket.channel,
        platform=ticket.platform,
        post_url=None if policy.blind_triage else ticket.post_url,
        customer=customer,
        label=ticket.label,
        score=ticket.score,
        severity=ticket.severity,
        model_version=ticket.model_version,
        triage_reason=ticket.triage_reason,
        category=ticket.category,
        priority=ticket.priority,
        created_at=ticket.created_at,
        agent_url=f"{policy.public_url}/agent/tickets/{ticket.id}",
        requester_email=ticket.contact_email,
    )


def event_for(ticket: Ticket, entry: TicketEntry) -> Event:
    key = f"{ticket.ref}/e{entry.id}"
    if entry.kind == EntryKind.STATUS:
        status = entry.body.removeprefix("Status:").strip()
        return Event(key, EventKind.STATUS, entry.body, entry.created_at, status=status)
    email = ticket.contact_email if entry.kind == EntryKind.CUSTOMER_DETAILS else None
    return Event(key, FORWARDED[EntryKind(entry.kind)], entry.body, entry.created_at, email=email)


def deliver_due(
    helpdesks: Mapping[str, Helpdesk],
    *,
    sessions: SessionFactory,
    policy: FilingPolicy,
    owner: str,
    now: datetime | None = None,
    limit: int | None = None,
) -> int:
    """File every due ticket and forward every due event this daemon can claim; return how many tickets were filed.

    Rows are claimed one at a time (as replies are), so a daemon that dies holds at most the one it was working on;
    a create whose outcome a crash left unknown is settled with ``find`` before any second create."""
    filed = 0
    tried: set[int] = set()
    while helpdesks and (limit is None or len(tried) < limit):
        row_id = _claim_one(sessions, owner, now or utcnow(), set(helpdesks), tried)
        if row_id is None:
            break
        tried.add(row_id)
        try:
            filed += _work(helpdesks, sessions, policy, row_id)
        finally:
            _release(sessions, row_id, owner)
    return filed


def _pending_events(now: datetime) -> ColumnElement[bool]:
    newer = (
        select(TicketEntry.id)
        .where(
            col(TicketEntry.ticket_id) == col(HelpdeskDelivery.ticket_id),
            col(TicketEntry.id) > col(HelpdeskDelivery.forwarded_entry_id),
            col(TicketEntry.kind).in_(FORWARDED_KINDS),
        )
        .correlate(HelpdeskDelivery)
    )
    return or_(
        col(HelpdeskDelivery.state).in_((DeliveryState.PENDING, DeliveryState.UNCERTAIN)),
        and_(col(HelpdeskDelivery.state) == DeliveryState.FILED, exists(newer)),
    )


def _claim_one(sessions: SessionFactory, owner: str, now: datetime, names: set[str], tried: set[int]) -> int | None:
    with transaction(sessions) as session:
        dead = dead_holders(session, HelpdeskDelivery.claimed_by, owner=owner)
        free = or_(
            col(HelpdeskDelivery.claimed_by).is_(None),
            col(HelpdeskDelivery.claimed_until) < now,
            col(HelpdeskDelivery.claimed_by).in_(dead),
        )
        due = and_(free, col(HelpdeskDelivery.next_attempt_at) <= now, _pending_events(now))
        row = session.exec(
            select(HelpdeskDelivery)
            .where(due, col(HelpdeskDelivery.helpdesk).in_(sorted(names)), col(HelpdeskDelivery.id).not_in(tried))
            .order_by(col(HelpdeskDelivery.id))
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        if row is None:
            return None
        won = session.exec(
            update(HelpdeskDelivery)
            .where(col(HelpdeskDelivery.id) == row.id, free)
            .values(claimed_by=owner, claimed_until=now + LEASE)
        )
        if won.rowcount == 1:
            return row.id
    return _claim_one(sessions, owner, now, names, tried | {saved_id(row)})


def _release(sessions: SessionFactory, row_id: int, owner: str) -> None:
    with transaction(sessions) as session:
        session.execute(
            update(HelpdeskDelivery)
            .where(col(HelpdeskDelivery.id) == row_id, col(HelpdeskDelivery.claimed_by) == owner)
            .values(claimed_by=None, claimed_until=None)
        )


def _load(session: Session, row_id: int) -> tuple[HelpdeskDelivery, Ticket]:
    row = session.get(HelpdeskDelivery, row_id)
    assert row is not None
    ticket = session.get(Ticket, row.ticket_id)
    assert ticket is not None
    return row, ticket


def _work(helpdesks: Mapping[str, Helpdesk], sessions: SessionFactory, policy: FilingPolicy, row_id: int) -> int:
    with transaction(sessions) as session:
        row, ticket = _load(session, row_id)
        helpdesk = helpdesks[row.helpdesk]
        filing = filing_for(ticket, policy)
        state = row.state
    try:
        if state in (DeliveryState.PENDING, DeliveryState.UNCERTAIN):
            return _file(helpdesk, sessions, row_id, filing, uncertain=state == DeliveryState.UNCERTAIN)
        _forward(helpdesk, sessions, row_id, filing)
        return 0
    except Unavailable as exc:
        _retry_later(sessions, policy, row_id, str(exc), exc.retry_after)
        return 0


def _file(helpdesk: Helpdesk, sessions: SessionFactory, row_id: int, filing: Filing, *, uncertain: bool) -> int:
    if uncertain:
        remote_id = helpdesk.find(filing)  # an earlier try may have filed it; never file twice
        if remote_id is not None:
            _filed(sessions, row_id, helpdesk, remote_id, settled=True)
            return 0
    with transaction(sessions) as session:
        row = session.get(HelpdeskDelivery, row_id)
        assert row is not None
        # Marked before the call: if this process dies inside it, the next try asks the helpdesk first.
        row.state = DeliveryState.UNCERTAIN
        row.attempts += 1
        session.add(row)
    try:
        remote_id = helpdesk.create(filing)
    except Refused as exc:
        _refused(sessions, row_id, helpdesk, str(exc))
        return 0
    _filed(sessions, row_id, helpdesk, remote_id, settled=False)
    return 1


def _filed(sessions: SessionFactory, row_id: int, helpdesk: Helpdesk, remote_id: str, *, settled: bool) -> None:
    with transaction(sessions) as session:
        row, ticket = _load(session, row_id)
        row.state = DeliveryState.FILED
        row.remote_id = remote_id
        row.filed_at = utcnow()
        row.last_error = None
        session.add(row)
        how = "found already filed" if settled else "filed"
        session.add(
            TicketEntry(
                ticket_id=saved_id(ticket),
                kind=EntryKind.NOTE,
                body=f"{how} in {helpdesk.name} as {remote_id}",
                actor="fairdesk",
            )
        )
    if settled:
        logger.info("%s: %s was already filed as %s; recorded it", helpdesk.name, filing_ref(row), remote_id)


def filing_ref(row: HelpdeskDelivery) -> str:
    return f"FD-{row.ticket_id:06d}"


def _forward(helpdesk: Helpdesk, sessions: SessionFactory, row_id: int, filing: Filing) -> None:
    while True:
        with transaction(sessions) as session:
            row, ticket = _load(session, row_id)
            entry = session.exec(
                select(TicketEntry)
                .where(
                    TicketEntry.ticket_id == row.ticket_id,
                    col(TicketEntry.id) > row.forwarded_entry_id,
                    col(TicketEntry.kind).in_(FORWARDED_KINDS),
                )
                .order_by(col(TicketEntry.id))
                .limit(1)
            ).first()
            if entry is None:
                return
            remote_id = row.remote_id or ""
            # A status read back from this very helpdesk is not news to it.
            echo = entry.actor == f"{HELPDESK_ACTOR}{helpdesk.name}"
            event = event_for(ticket, entry)
            row.forwarding_entry_id = entry.id
            session.add(row)
        try:
            if not echo:
                helpdesk.add(remote_id, filing, event)
            error = None
        except Refused as exc:
            error = f"refused {event.kind} {event.key}: {exc}"[:500]
            logger.warning("%s: %s", helpdesk.name, error)
        with transaction(sessions) as session:
            done = session.get(HelpdeskDelivery, row_id)
            assert done is not None
            done.forwarded_entry_id = saved_id(entry)
            done.forwarding_entry_id = None
            done.last_error = error
            session.add(done)


def _refused(sessions: SessionFactory, row_id: int, helpdesk: Helpdesk, reason: str) -> None:
    with transaction(sessions) as session:
        row, ticket = _load(session, row_id)
        row.state = DeliveryState.FAILED
        row.last_error = reason[:500]
        session.add(row)
        session.add(
            TicketEntry(
                ticket_id=saved_id(ticket),
                kind=EntryKind.NOTE,
                actor="fairdesk",
                body=f"{helpdesk.name} refused this ticket: {reason}"[:2000],
            )
        )
    logger.warning("%s refused %s for good: %s", helpdesk.name, filing_ref(row), reason)


def _retry_later(
    sessions: SessionFactory, policy: FilingPolicy, row_id: int, error: str, retry_after: float | None
) -> None:
    with transaction(sessions) as session:
        row = session.get(HelpdeskDelivery, row_id)
        assert row is not None
        if retry_after is None:
            base = policy.first_retry(row.helpdesk) * 2 ** max(row.attempts - 1, 0)
            retry_after = min(base, MAX_BACKOFF.total_seconds()) * random.uniform(0.8, 1.2)
        first = row.last_error is None
        row.next_attempt_at = utcnow() + timedelta(seconds=retry_after)
        row.last_error = error[:500]
        session.add(row)
    # Log the change, not every repeat: a waiting delivery shows in /healthz and on the ticket.
    (logger.warning if first else logger.debug)(
        "%s: %s not delivered, retrying in %.0f s: %s", row.helpdesk, filing_ref(row), retry_after, error
    )


__all__ = ["FilingPolicy", "deliver_due", "event_for", "filing_for"]
