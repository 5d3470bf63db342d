"""Ticket operations shared by the web pages and the CLI: the queue, web intake, customer details, agent actions."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, func, or_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from fairdesk.ticketing.categories import category_for
from fairdesk.ticketing.deliveries import queue_deliveries
from fairdesk.ticketing.intake import storable, subject_for
from fairdesk.ticketing.models import (
    Channel,
    EntryKind,
    HandleReveal,
    HelpdeskDelivery,
    MailOutbox,
    RateCounter,
    Status,
    Ticket,
    TicketEntry,
    saved_id,
    utcnow,
)
from fairdesk.ticketing.priority import Verdict, priority_for
from fairdesk.ticketing.tokens import hash_token, new_token, well_formed

QUEUE_LIMIT = 500
_REF = re.compile(r"^(?:FD-)?0*(\d{1,12})$", re.IGNORECASE)
OPEN_STATUSES = (Status.NEW, Status.OPEN, Status.PENDING)


@dataclass(frozen=True, slots=True)
class QueueFilter:
    status: str | None = None  # a status, "active" (new/open/pending) or None for all
    channel: str | None = None
    platform: str | None = None
    severity: int | None = None
    search: str | None = None
    category: str | None = None


def queue(*, session: Session, filters: QueueFilter | None = None, limit: int = QUEUE_LIMIT) -> list[Ticket]:
    """The one queue for every channel, most urgent first, then oldest first."""
    filters = filters or QueueFilter()
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
    if filters.category:
        stmt = stmt.where(Ticket.category == filters.category)
    if filters.search:
        pattern = f"%{filters.search.lower()}%"
        matches: list[ColumnElement[bool]] = [
            func.lower(Ticket.body).like(pattern),
            func.lower(Ticket.subject).like(pattern),
        ]
        if (ref := _REF.match(filters.search.strip())) is not None:
            matches.append(col(Ticket.id) == int(ref.group(1)))
        stmt = stmt.where(or_(*matches))
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
        subject=storable(subject.strip()[:200]) or subject_for(storable(description)),
        body=storable(description),
        contact_email=email,
        category=category_for(f"{subject}\n{description}"),
        label=verdict.label,
        score=verdict.score,
        severity=verdict.severity,
        model_version=verdict.model_version,
        triage_reason=verdict.triage_reason,
        token_hash=token_hash,
    )
    session.add(ticket)
    session.flush()
    queue_deliveries(session, ticket)
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
        TicketEntry(
            ticket_id=saved_id(ticket), kind=EntryKind.CUSTOMER_DETAILS, body="\n".join(lines), actor="customer"
        )
    )
    if ticket.status == Status.PENDING:
        _set_status(session, ticket, Status.OPEN, "customer")
    ticket.updated_at = utcnow()
    session.add(ticket)


def set_status(*, session: Session, ticket: Ticket, status: str, actor: str, by_agent: bool = False) -> None:
    """Change the status, logged on the timeline. ``by_agent``: an agent did it (the customer's page and a helpdesk's
    status read back are not agents), so it may be the ticket's first response."""
    if status not in Status.__members__.values():
        raise ValueError(f"unknown status {status!r}")
    if by_agent and ticket.first_response_at is None:
        ticket.first_response_at = utcnow()
        session.add(ticket)
    if status != ticket.status:
        _set_status(session, ticket, status, actor)


def _set_status(session: Session, ticket: Ticket, status: str, actor: str) -> None:
    session.add(
        TicketEntry(
            ticket_id=saved_id(ticket), kind=EntryKind.STATUS, body=f"Status: {status}", actor=actor, public=True
        )
    )
    ticket.status = status
    ticket.updated_at = utcnow()
    session.add(ticket)


def add_note(*, session: Session, ticket: Ticket, body: str, actor: str) -> None:
    session.add(TicketEntry(ticket_id=saved_id(ticket), kind=EntryKind.NOTE, body=body, actor=actor))


def assign(*, session: Session, ticket: Ticket, agent: str | None, actor: str) -> None:
    ticket.assignee = agent or None
    session.add(ticket)
    session.add(
        TicketEntry(
            ticket_id=saved_id(ticket), kind=EntryKind.ASSIGN, body=f"Assigned to {agent or 'nobody'}", actor=actor
        )
    )


def log_reveal(*, session: Session, ticket: Ticket, actor: str) -> None:
    session.add(
        TicketEntry(
            ticket_id=saved_id(ticket), kind=EntryKind.REVEAL, body="Revealed the customer's handle", actor=actor
        )
    )


def pseudonym(ticket: Ticket) -> str:
    """A stable stand-in for the customer's handle, for blind triage."""
    seed = f"{ticket.platform}:{ticket.author_id or ticket.contact_email or ticket.id}"
    return "customer-" + hashlib.sha256(seed.encode()).hexdigest()[:6]


# --- Agents' pages: persistent handle reveals, email replies, rate counters, dashboard figures ---------------------

EMAIL_ENTRY = "email"  # TicketEntry.kind of an agent's email reply; its MailOutbox row holds the delivery state


def reveal_handle(*, session: Session, ticket: Ticket, agent: str) -> None:
    """Show this agent the customer's real handle on this ticket from now on; the reveal is logged on the ticket."""
    if session.get(HandleReveal, (agent, ticket.id)) is None:
        session.add(HandleReveal(agent=agent, ticket_id=saved_id(ticket)))
    log_reveal(session=session, ticket=ticket, actor=agent)


def revealed_ticket_ids(*, session: Session, agent: str, ticket_ids: Sequence[int]) -> set[int]:
    if not ticket_ids:
        return set()
    rows = session.exec(
        select(HandleReveal.ticket_id).where(HandleReveal.agent == agent, col(HandleReveal.ticket_id).in_(ticket_ids))
    )
    return set(rows)


def queue_email(*, session: Session, ticket: Ticket, body: str, actor: str) -> MailOutbox:
    """Record an agent's email reply on the ticket's timeline and in the mail outbox, before it is sent."""
    if not ticket.contact_email:
        raise ValueError("the customer gave no contact email")
    entry = TicketEntry(ticket_id=saved_id(ticket), kind=EMAIL_ENTRY, body=body, actor=actor)
    session.add(entry)
    session.flush()
    mail = MailOutbox(
        ticket_id=saved_id(ticket),
        entry_id=entry.id,
        to_addr=ticket.contact_email,
        subject=f"[{ticket.ref}] {ticket.subject}"[:200],
        body=body,
        actor=actor,
    )
    session.add(mail)
    ticket.updated_at = utcnow()
    session.add(ticket)
    session.flush()
    return mail


def deliveries_of(*, session: Session, ticket_id: int) -> list[HelpdeskDelivery]:
    """Where the ticket stands in each configured helpdesk."""
    stmt = select(HelpdeskDelivery).where(HelpdeskDelivery.ticket_id == ticket_id).order_by(col(HelpdeskDelivery.id))
    return list(session.exec(stmt))


def mail_by_entry(*, session: Session, ticket_id: int) -> dict[int, MailOutbox]:
    rows = session.exec(select(MailOutbox).where(MailOutbox.ticket_id == ticket_id))
    return {m.entry_id: m for m in rows if m.entry_id is not None}


def count_hit(*, session: Session, bucket: str, started: int) -> int:
    """Add one hit to a fixed-window counter and return the window's total, atomically on SQLite and PostgreSQL."""
    dialect = session.get_bind().dialect.name
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
    hits = col(RateCounter.hits)
    stmt = (
        insert_fn(RateCounter)
        .values(bucket=bucket, started=started, hits=1)
        .on_conflict_do_update(index_elements=["bucket", "started"], set_={"hits": hits + 1})
        .returning(hits)
    )
    return int(session.execute(stmt).scalar_one())


def purge_counters(*, session: Session, before: int) -> None:
    session.execute(delete(RateCounter).where(col(RateCounter.started) < before))
