"""Recording that a new ticket is to be filed in each configured helpdesk, in the transaction that opens it."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from fairdesk.ticketing.models import HelpdeskDelivery, Ticket, saved_id

HELPDESKS = "fairdesk.helpdesks"  # Session.info key: the helpdesk names this daemon files into


def bind_helpdesks(session: Session, names: Sequence[str]) -> Session:
    """Tell a session which helpdesks new tickets go to (the composition root does this for every session)."""
    session.info[HELPDESKS] = tuple(names)
    return session


def queue_deliveries(session: Session, ticket: Ticket) -> None:
    """One delivery row per configured helpdesk, in the caller's transaction: a ticket is never opened without them,
    so a crash at any moment leaves nothing to lose. Nothing when fairdesk's own queue is the only queue."""
    for name in session.info.get(HELPDESKS, ()):
        session.add(HelpdeskDelivery(ticket_id=saved_id(ticket), helpdesk=name))
