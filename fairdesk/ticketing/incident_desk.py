"""What agents do with incidents: list them, set one status for every reporter, split a wrongly joined ticket out."""

from __future__ import annotations

import logging

from sqlmodel import Session, col, select

from fairdesk.ticketing.incidents import OPEN_STATUSES, recount
from fairdesk.ticketing.models import EntryKind, Incident, Status, Ticket, TicketEntry, saved_id, utcnow
from fairdesk.ticketing.store import set_status

logger = logging.getLogger(__name__)

INCIDENT_LIMIT = 100


class NotInIncident(ValueError):
    """The ticket is not linked to that incident (any more)."""


def open_incidents(*, session: Session, min_reporters: int, limit: int = INCIDENT_LIMIT) -> list[Incident]:
    """Open incidents with at least ``min_reporters`` distinct reporters: most urgent first, then most reporters,
    then oldest."""
    stmt = (
        select(Incident)
        .where(col(Incident.status).in_(OPEN_STATUSES), Incident.reporters >= min_reporters)
        .order_by(col(Incident.priority), col(Incident.reporters).desc(), col(Incident.first_reported_at))
        .limit(limit)
    )
    return list(session.exec(stmt))


def incident_tickets(*, session: Session, incident_id: int) -> list[Ticket]:
    stmt = select(Ticket).where(Ticket.incident_id == incident_id).order_by(col(Ticket.created_at), col(Ticket.id))
    return list(session.exec(stmt))


def incident_of(*, session: Session, ticket: Ticket) -> Incident | None:
    return session.get(Incident, ticket.incident_id) if ticket.incident_id is not None else None


def set_incident_status(*, session: Session, incident: Incident, status: str, actor: str) -> int:
    """Set the incident's status once; it reaches every linked ticket as that ticket's own status change (public on
    the reporter's page, forwarded to their helpdesk tickets like any status change). Returns tickets changed."""
    if status not in Status.__members__.values():
        raise ValueError(f"unknown status {status!r}")
    incident.status = status
    incident.updated_at = utcnow()
    session.add(incident)
    changed = 0
    for ticket in incident_tickets(session=session, incident_id=saved_id(incident)):
        changed += int(ticket.status != status)
        set_status(session=session, ticket=ticket, status=status, actor=actor, by_agent=True)
    logger.info("incident %s set to %s by %s: %d tickets changed", incident.ref, status, actor, changed)
    return changed


def split_ticket(*, session: Session, incident: Incident, ticket: Ticket, actor: str) -> None:
    """Take a wrongly joined ticket out of the incident, logged on its timeline; it stops counting as a reporter and
    is never grouped again by itself (an agent decided)."""
    if ticket.incident_id != incident.id:
        raise NotInIncident(f"{ticket.ref} is not in incident {incident.ref}")
    why = f"Split out of incident {incident.ref} by {actor}"
    ticket.incident_id = None
    ticket.incident_reason = why  # also keeps it out of automatic grouping (incidents.best_match)
    ticket.updated_at = utcnow()
    session.add(ticket)
    session.add(TicketEntry(ticket_id=saved_id(ticket), kind=EntryKind.INCIDENT, body=why, actor=actor))
    recount(session, incident)
    logger.info("ticket %s split out of incident %s by %s", ticket.ref, incident.ref, actor)
