"""SQLModel tables: tickets and their timeline, the mention ledger, the reply outbox, account state, agents."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Aware UTC; SQLModel's UTCDateTime columns store and return UTC on SQLite and PostgreSQL alike."""
    return datetime.now(UTC)


class _Row(Protocol):
    @property
    def id(self) -> int | None: ...


def saved_id(row: _Row) -> int:
    """The primary key of a row loaded from the database or added and flushed: it is None only before the flush."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id until it is flushed")
    return row.id


class Channel(StrEnum):
    SOCIAL = "social"
    WEB = "web"
    EMAIL = "email"


class Status(StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"  # waiting on the customer
    SOLVED = "solved"
    CLOSED = "closed"


class Outcome(StrEnum):
    TICKETED = "ticketed"
    APPENDED = "appended"  # added to an existing ticket's thread
    MERGED = "merged"  # the same post was already ticketed through another of the brand's accounts
    SKIPPED = "skipped"


class SkipReason(StrEnum):
    NOT_COMPLAINT = "not_complaint"
    OWN_POST = "own_post"
    REPOST = "repost"
    OPTED_OUT = "opted_out"
    DUPLICATE = "duplicate"


class ReplyState(StrEnum):
    PENDING = "pending"  # intent recorded, not yet tried (or waiting for a retry)
    SENDING = "sending"  # claimed by a daemon; the outcome of the send is not yet known
    UNCERTAIN = "uncertain"  # a send failed in a way that may still have posted: check the platform before retrying
    SENT = "sent"
    FAILED = "failed"  # gave up: permanent refusal or attempts exhausted
    CANCELLED = "cancelled"  # e.g. the customer opted out before it was sent


class TicketBase(SQLModel):
    channel: str = Field(index=True, max_length=16)
    status: str = Field(default=Status.NEW, index=True, max_length=16)
    priority: int = Field(index=True, description="1 (most urgent) to 4, from the content only")
    subject: str = Field(max_length=200)
    body: str = Field(sa_column=Column(Text, nullable=False))
    platform: str | None = Field(default=None, index=True)
    account: str | None = None
    post_id: str | None = None
    post_url: str | None = None
    author_id: str | None = None
    author_handle: str | None = None
    conversation_id: str | None = Field(default=None, index=True)
    found_by: str | None = None
    contact_email: str | None = None
    label: str | None = None
    score: float | None = None
    severity: int | None = None
    model_version: str | None = None
    triage_reason: str | None = None
    deleted_at_source: bool = False
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)


class Ticket(TicketBase, table=True):
    __table_args__ = (UniqueConstraint("platform", "post_id", name="uq_ticket_post"),)

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str | None = Field(default=None, unique=True, max_length=64)
    assignee: str | None = None
    category: str | None = Field(default=None, index=True, max_length=24, description="From the text only, at intake")
    # The service's own clock, the same for every channel (a social ticket's created_at is the post's time):
    filed_at: datetime = Field(default_factory=utcnow, index=True, description="When fairdesk filed the ticket")
    first_response_at: datetime | None = Field(default=None, description="An agent's first status change")
    # Near-duplicate complaints about one problem are linked to one Incident (ticketing/incidents.py); why it joined,
    # in words an agent can check ("joined incident #3: 0.82 similar to ticket #41, same category ...").
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    incident_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))

    @property
    def ref(self) -> str:
        return f"FD-{self.id:06d}"


class Incident(SQLModel, table=True):
    """One problem many people reported: each reporter keeps their own ticket (``Ticket.incident_id``); an agent
    works the incident once and its status reaches every linked ticket. Weight is distinct reporters, never reach."""

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default=Status.NEW, index=True, max_length=16)
    category: str | None = Field(default=None, index=True, max_length=24)
    subject: str = Field(max_length=200)
    # The founding ticket's text: what later complaints are compared with, besides the linked tickets themselves.
    body: str = Field(sa_column=Column(Text, nullable=False))
    reporters: int = Field(default=0, description="Distinct authors among the linked tickets, recounted on each change")
    priority: int = Field(index=True, description="1 (most urgent) to 4: the members' content, raised by reporters")
    first_reported_at: datetime = Field(default_factory=utcnow)
    last_reported_at: datetime = Field(default_factory=utcnow, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def ref(self) -> str:
        return f"IN-{self.id:05d}"


class EntryKind(StrEnum):
    POST = "post"  # a later post in the ticket's thread
    CUSTOMER_DETAILS = "customer_details"  # submitted on the link page
    NOTE = "note"  # internal agent note
    STATUS = "status"  # status change (public)
    ASSIGN = "assign"
    REVEAL = "reveal"  # an agent revealed the customer's handle
    REPLY = "reply"  # the public reply was sent
    INCIDENT = "incident"  # linked to an incident, or split out of one (internal: says why)


class TicketEntry(SQLModel, table=True):
    """The ticket's timeline. ``public`` entries may be shown on the customer's page."""

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    kind: str = Field(max_length=24)
    body: str = Field(default="", sa_column=Column(Text, nullable=False))
    actor: str = ""
    public: bool = False
    post_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class LedgerEntry(SQLModel, table=True):
    """Every fetched mention and what became of it."""

    __table_args__ = (UniqueConstraint("platform", "account", "post_id", name="uq_ledger_post"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(index=True)
    account: str
    post_id: str
    kind: str
    found_by: str
    author_handle: str
    outcome: str = Field(index=True, max_length=16)
    reason: str | None = None
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    label: str | None = None
    score: float | None = None
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    posted_at: datetime
    fetched_at: datetime = Field(default_factory=utcnow, index=True)


class Outbox(SQLModel, table=True):
    """One public reply: the intent is recorded before sending and the result after."""

    __table_args__ = (UniqueConstraint("platform", "in_reply_to", name="uq_outbox_post"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    platform: str
    account: str
    in_reply_to: str
    state: str = Field(default=ReplyState.PENDING, index=True, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, index=True)
    claimed_by: str | None = None
    claimed_until: datetime | None = None
    remote_id: str | None = None
    text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    last_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None


class AccountState(SQLModel, table=True):
    """Per-account cursor, poll lease and health."""

    platform: str = Field(primary_key=True)
    account: str = Field(primary_key=True)
    cursor: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    lease_owner: str | None = None
    lease_until: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    healthy: bool = True
    gap_at: datetime | None = None
    mentions_seen: int = 0


class OptOut(SQLModel, table=True):
    """Authors who asked not to be contacted on a platform: no replies, ever."""

    platform: str = Field(primary_key=True)
    author_id: str = Field(primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)


class Agent(SQLModel, table=True):
    name: str = Field(primary_key=True, max_length=64)
    password_hash: str
    created_at: datetime = Field(default_factory=utcnow)
    disabled: bool = False  # `fairdesk agent lock`: no login, and every session was ended
    totp_secret: str | None = Field(default=None, max_length=64)  # set by the admin: logins then need a TOTP code
    totp_last_step: int | None = None  # the time step of the last code used: it and older ones are refused


class AgentSession(SQLModel, table=True):
    """A logged-in agent: the cookie holds a random id, the database only its SHA-256 (a leaked table opens nothing)."""

    id_hash: str = Field(primary_key=True, max_length=64)
    agent: str = Field(foreign_key="agent.name", index=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    client: str = Field(default="", max_length=64)  # the address it logged in from, for `fairdesk agent sessions`


class LoginFailure(SQLModel, table=True):
    """Recent failed logins of one account name or one client (a keyed hash of either): how long the next must wait."""

    key: str = Field(primary_key=True, max_length=64)
    failures: int = 0
    last_failed: float = 0.0  # seconds since the epoch


class Setting(SQLModel, table=True):
    """Small key/value state the daemon keeps (e.g. generated signing key)."""

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_column=Column(Text, nullable=False))


class TicketPublic(SQLModel):
    """What the customer's link page may show: no notes, no submitted details, no agent data."""

    ref: str
    status: str
    channel: str
    body: str
    post_url: str | None
    author_handle: str | None
    created_at: datetime
    deleted_at_source: bool


class RateCounter(SQLModel, table=True):
    """Fixed-window request counters kept in the database, so that every daemon sharing it enforces one limit."""

    bucket: str = Field(primary_key=True, max_length=96)  # e.g. "view:token:<hash>" (never a raw token or address)
    started: int = Field(primary_key=True, index=True)  # the window's start, in seconds since the epoch
    hits: int = 0


class HandleReveal(SQLModel, table=True):
    """An agent chose to see a customer's handle on a ticket (blind triage); kept so the choice persists."""

    agent: str = Field(primary_key=True, max_length=64)
    ticket_id: int = Field(primary_key=True, foreign_key="ticket.id")
    created_at: datetime = Field(default_factory=utcnow)


class MailState(StrEnum):
    PENDING = "pending"  # recorded, the send has not finished (or the process died during it)
    SENT = "sent"
    FAILED = "failed"  # the SMTP server refused it or could not be reached; shown to agents, who may retry


class MailOutbox(SQLModel, table=True):
    """An agent's email reply to the customer's contact address: recorded before sending, its outcome after."""

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    entry_id: int | None = Field(default=None, foreign_key="ticketentry.id")
    to_addr: str = Field(max_length=254)
    subject: str = Field(max_length=200)
    body: str = Field(sa_column=Column(Text, nullable=False))
    actor: str = Field(max_length=64)
    state: str = Field(default=MailState.PENDING, index=True, max_length=16)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    message_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None


class DeliveryState(StrEnum):
    PENDING = "pending"  # recorded with the ticket; not yet filed (or waiting for a retry)
    UNCERTAIN = "uncertain"  # a try failed in a way that may still have filed it: ask the helpdesk before retrying
    FILED = "filed"  # the helpdesk has the ticket (remote_id); later events are forwarded from the timeline
    FAILED = "failed"  # the helpdesk refused it for good; last_error holds its reason


class HelpdeskDelivery(SQLModel, table=True):
    """One fairdesk ticket in one configured helpdesk: written in the transaction that opens the ticket, claimed and
    filed once by the delivery job; then the ticket's timeline entries are forwarded up to ``forwarded_entry_id``."""

    __table_args__ = (UniqueConstraint("ticket_id", "helpdesk", name="uq_delivery_ticket_helpdesk"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    helpdesk: str = Field(max_length=64, index=True)
    state: str = Field(default=DeliveryState.PENDING, index=True, max_length=16)
    remote_id: str | None = Field(default=None, max_length=128)
    remote_status: str | None = Field(default=None, max_length=64)  # the helpdesk's own word, as last read
    forwarded_entry_id: int = 0  # timeline entries up to this id have been sent to the helpdesk
    forwarding_entry_id: int | None = None  # an entry being sent; set: a crash may have sent it
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, index=True)
    claimed_by: str | None = Field(default=None, max_length=128)
    claimed_until: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    filed_at: datetime | None = None
    synced_at: datetime | None = None
