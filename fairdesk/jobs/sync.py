"""The sync job: read filed tickets' status back from their helpdesk, so the customer's page says what agents did."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlmodel import col, select

from fairdesk.helpdesk.base import Helpdesk
from fairdesk.ticketing.db import SessionFactory, transaction
from fairdesk.ticketing.models import DeliveryState, HelpdeskDelivery, Status, Ticket, utcnow
from fairdesk.ticketing.store import set_status

logger = logging.getLogger(__name__)

PER_PASS = 500  # tickets read per helpdesk per pass, least recently synced first (batched inside each client)
HELPDESK_ACTOR = "helpdesk:"  # TicketEntry.actor prefix of changes read back from a helpdesk


def sync_statuses(helpdesks: Mapping[str, Helpdesk], *, sessions: SessionFactory) -> int:
    """One pass over every helpdesk that can be read; returns how many fairdesk tickets changed status."""
    changed = 0
    for name, helpdesk in helpdesks.items():
        if helpdesk.reads_status:
            changed += _sync_one(name, helpdesk, sessions)
    return changed


def _sync_one(name: str, helpdesk: Helpdesk, sessions: SessionFactory) -> int:
    with transaction(sessions) as session:
        rows = session.exec(
            select(HelpdeskDelivery.id, HelpdeskDelivery.remote_id)
            .join(Ticket, col(Ticket.id) == col(HelpdeskDelivery.ticket_id))
            .where(
                HelpdeskDelivery.helpdesk == name,
                HelpdeskDelivery.state == DeliveryState.FILED,
                col(Ticket.status) != Status.CLOSED,
            )
            .order_by(col(HelpdeskDelivery.synced_at).is_not(None), col(HelpdeskDelivery.synced_at))
            .limit(PER_PASS)
        ).all()
    by_remote = {str(remote): row_id for row_id, remote in rows if remote}
    if not by_remote:
        return 0
    statuses = helpdesk.statuses(list(by_remote))  # HelpdeskError goes to the job boundary and /healthz
    changed = 0
    now = utcnow()
    with transaction(sessions) as session:
        for remote_id, row_id in by_remote.items():
            row = session.get(HelpdeskDelivery, row_id, with_for_update=True)
            assert row is not None
            row.synced_at = now
            status = statuses.get(remote_id)
            if status is not None:
                row.remote_status = status
                ticket = session.get(Ticket, row.ticket_id, with_for_update=True)
                if ticket is not None and ticket.status != status:
                    set_status(session=session, ticket=ticket, status=status, actor=f"{HELPDESK_ACTOR}{name}")
                    changed += 1
            session.add(row)
    if changed:
        logger.info("%s: %d ticket%s changed status in the helpdesk", name, changed, "" if changed == 1 else "s")
    return changed


__all__ = ["HELPDESK_ACTOR", "sync_statuses"]
