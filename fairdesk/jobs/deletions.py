"""The deletion sweep: when an author deletes a post at the source, its text is removed from our records too."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import col, select

from fairdesk.listener.base import Adapter, AdapterError, ChecksDeletions
from fairdesk.ticketing.db import SessionFactory, transaction
from fairdesk.ticketing.models import EntryKind, LedgerEntry, Ticket, TicketEntry, saved_id, utcnow

logger = logging.getLogger(__name__)

WINDOW = timedelta(days=30)  # how far back posts are re-checked
CHUNK = 25  # post ids per platform call, unless the adapter says otherwise (`deletion_batch`)
DELETED_TEXT = ""


def sweep_deleted(adapter: Adapter, *, sessions: SessionFactory) -> int:
    """Blank the stored text of this account's posts that were deleted at the source; return how many."""
    if not isinstance(adapter, ChecksDeletions):
        return 0
    since = utcnow() - WINDOW
    with transaction(sessions) as session:
        ids = list(
            session.exec(
                select(LedgerEntry.post_id).where(
                    LedgerEntry.platform == adapter.platform,
                    LedgerEntry.account == adapter.account,
                    LedgerEntry.fetched_at >= since,
                    LedgerEntry.text != DELETED_TEXT,
                )
            )
        )
    removed = 0
    chunk = int(getattr(adapter, "deletion_batch", CHUNK))
    for start in range(0, len(ids), chunk):
        try:
            gone = adapter.deleted_posts(ids[start : start + chunk])
        except AdapterError as exc:
            logger.warning("%s/%s: deletion check failed: %s", adapter.platform, adapter.account, exc)
            return removed
        if gone:
            _forget(sessions, adapter.platform, sorted(gone))
            removed += len(gone)
    if removed:
        logger.info("%s/%s: removed the text of %d deleted posts", adapter.platform, adapter.account, removed)
    return removed


def _forget(sessions: SessionFactory, platform: str, post_ids: list[str]) -> None:
    with transaction(sessions) as session:
        session.execute(
            update(LedgerEntry)
            .where(col(LedgerEntry.platform) == platform, col(LedgerEntry.post_id).in_(post_ids))
            .values(text=DELETED_TEXT)
        )
        session.execute(
            update(TicketEntry)
            .where(col(TicketEntry.kind) == EntryKind.POST, col(TicketEntry.post_id).in_(post_ids))
            .values(body="(deleted by its author)")
        )
        for ticket in session.exec(
            select(Ticket).where(Ticket.platform == platform, col(Ticket.post_id).in_(post_ids))
        ):
            ticket.body = DELETED_TEXT
            ticket.subject = "(post deleted by its author)"
            ticket.deleted_at_source = True
            ticket.updated_at = utcnow()
            session.add(ticket)
            session.add(
                TicketEntry(
                    ticket_id=saved_id(ticket),
                    kind=EntryKind.STATUS,
                    body="The post was deleted by its author; its text was removed",
                    actor="fairdesk",
                    public=True,
                )
            )
