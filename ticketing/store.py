"""Ticket operations shared by the web pages and the CLI: the queue, web intake, customer details, agent actions."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from ticketing.intake import subject_for
from ticketing.models import Channel, EntryKind, Status, Ticket, TicketEntry, utcnow
from ticketing.priority import Verdict, priority_for
from ticketing.tokens import hash_token, new_token, well_formed

QUEUE_LIMIT = 500
OPEN_STATUSES = (Status.NEW, Status.OPEN, Status.PENDING)


@dataclass(frozen=True, slots=True)
class QueueFilter:
    status: str | None = None  # a status, "active" (new/open/pending) or None for all
    channel: str | None = None
    platform: str | None = None
    severity: int | None = None
    search: str | None = None


def queue(*, session: Session, filters: QueueFilter = QueueFilter(), limit: int = QUEUE_LIMIT) -> list[Ticket]:
    """The one queue for every channel, most urgent first, then oldest first."""
    stmt = select(Ticket)
    if filters.status == "active":
        stmt = stmt.where(col(Ticket.status).in_(OPEN_STATUSES))
    elif filters.status:
        stmt = stmt.where(Ticket.status == filters.status)
    if filters.channel:
        stmt = stmt.where(Ticket.channel == filters.channel)
    if filters.platform:
        stmt = stmt.where(Ticket.platform == filters.platform)
    if filters.severity:
        stmt = stmt.where(Ticket.severity == filters.severity)
    if filters.search:
        pattern = f"%{filters.search.lower()}%"
        stmt = stmt.where(or_(func.lower(Ticket.body).like(pattern), func.lower(Ticket.subject).like(pattern)))
    return list(session.exec(stmt.order_by(col(Ticket.priority), col(Ticket.created_at), col(Ticket.id)).limit(limit)))


def ticket_by_token(*, session: Session, token: str) -> Ticket | None:
    if not well_formed(token):
        return None
    return session.exec(select(Ticket).where(Ticket.token_hash == hash_token(token))).first()


def timeline(*, session: Session, ticket_id: int, public_only: bool) -> list[TicketEntry]:
    stmt = select(TicketEntry).where(TicketEntry.ticket_id == ticket_id)
    if public_only:
        stmt = stmt.where(col(TicketEntry.public).is_(True))
    return list(session.exec(stmt.order_by(col(TicketEntry.created_at), col(TicketEntry.id))))


def open_web_ticket(
    *, session: Session, email: str, subject: str, description: str, verdict: Verdict
) -> tuple[Ticket, str]:
    """A ticket from the web form, under the same priority rule as every other channel. Returns it and its token."""
    token, token_hash = new_token()
    ticket = Ticket(
        channel=Channel.WEB,
        priority=priority_for(verdict),
        subject=subject.strip()[:200] or subject_for(description),
        body=description,
        contact_email=email,
        label=verdict.label,
        score=verdict.score,
        severity=verdict.severity,
        model_version=verdict.model_version,
        triage_reason=verdict.triage_reason,
        token_hash=token_hash,
    )
    session.add(ticket)
    session.flush()
    return ticket, token


def add_customer_details(
    *, session: Session, ticket: Ticket, order_number: str, details: str, email: str, consent: bool
) -> None:
    """What the customer submits on the link page: visible to agents only, never shown back on that page."""
    lines = []
    if order_number:
        lines.append(f"Order number: {order_number}")
    if details:
        lines.append(details)
    if email:
        lines.append(f"Contact email: {email}" + (" (consented to link their handle)" if consent else ""))
        if consent:
            ticket.contact_email = email
    session.add(
        TicketEntry(ticket_id=ticket.id, kind=EntryKind.CUSTOMER_DETAILS, body="\n".join(lines), actor="customer")
    )
    if ticket.status == Status.PENDING:
        _set_status(session, ticket, Status.OPEN, "customer")
    ticket.updated_at = utcnow()
    session.add(ticket)


def set_status(*, session: Session, ticket: Ticket, status: str, actor: str) -> None:
    if status not in Status.__members__.values():
        raise ValueError(f"unknown status {status!r}")
    if status != ticket.status:
        _set_status(session, ticket, status, actor)


def _set_status(session: Session, ticket: Ticket, status: str, actor: str) -> None:
    session.add(
        TicketEntry(ticket_id=ticket.id, kind=EntryKind.STATUS, body=f"Status: {status}", actor=actor, public=True)
    )
    ticket.status = status
    ticket.updated_at = utcnow()
    session.add(ticket)


def add_note(*, session: Session, ticket: Ticket, body: str, actor: str) -> None:
    session.add(TicketEntry(ticket_id=ticket.id, kind=EntryKind.NOTE, body=body, actor=actor))


def assign(*, session: Session, ticket: Ticket, agent: str | None, actor: str) -> None:
    ticket.assignee = agent or None
    session.add(ticket)
    session.add(
        TicketEntry(ticket_id=ticket.id, kind=EntryKind.ASSIGN, body=f"Assigned to {agent or 'nobody'}", actor=actor)
    )


def log_reveal(*, session: Session, ticket: Ticket, actor: str) -> None:
    session.add(TicketEntry(ticket_id=ticket.id, kind=EntryKind.REVEAL, body="Revealed the customer's handle", actor=actor))


def pseudonym(ticket: Ticket) -> str:
    """A stable stand-in for the customer's handle, for blind triage."""
    seed = f"{ticket.platform}:{ticket.author_id or ticket.contact_email or ticket.id}"
    return "customer-" + hashlib.sha256(seed.encode()).hexdigest()[:6]
