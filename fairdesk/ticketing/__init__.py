"""Tickets, the mention ledger, the reply outbox and account state, stored with SQLModel."""

from fairdesk.ticketing.db import make_engine, migrate, session_factory, transaction
from fairdesk.ticketing.intake import IntakeResult, record_mention
from fairdesk.ticketing.models import (
    AccountState,
    Agent,
    Channel,
    LedgerEntry,
    OptOut,
    Outbox,
    Outcome,
    ReplyState,
    Status,
    Ticket,
    TicketEntry,
)
from fairdesk.ticketing.priority import Verdict, priority_for

__all__ = [
    "AccountState",
    "Agent",
    "Channel",
    "IntakeResult",
    "LedgerEntry",
    "OptOut",
    "Outbox",
    "Outcome",
    "ReplyState",
    "Status",
    "Ticket",
    "TicketEntry",
    "Verdict",
    "make_engine",
    "migrate",
    "priority_for",
    "record_mention",
    "session_factory",
    "transaction",
]
