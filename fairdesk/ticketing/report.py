"""The fairness report's numbers: response and resolution times, reply coverage and incident sizes over a period."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
from sqlalchemy import ColumnElement, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from fairdesk.listener.base import FoundBy
from fairdesk.ticketing.models import (
    Channel,
    EntryKind,
    MailOutbox,
    MailState,
    Outbox,
    ReplyState,
    Status,
    Ticket,
    TicketEntry,
)

# Groups in the order the report shows them. Every group of a dimension is measured the same way.
ALL, CHANNEL, PLATFORM, TRIAGE, TRIAGE_REASON = "all", "channel", "platform", "triage", "triage reason"
# Priority is content's urgency and is meant to differ: it is shown (a gap between channels may come from their mix
# of priorities) but never compared in the verdict.
PRIORITY, PRIORITY_CHANNEL = "priority", "priority and channel"
DIMENSIONS = (ALL, CHANNEL, PLATFORM, TRIAGE, TRIAGE_REASON, PRIORITY, PRIORITY_CHANNEL)
NEEDED, NOT_NEEDED = "needed", "not needed"
RESOLVED = (Status.SOLVED.value, Status.CLOSED.value)
_STATUS_PREFIX = "Status: "  # how store.set_status writes a status change on the timeline


@dataclass(frozen=True, slots=True)
class Spread:
    """How long ``n`` tickets took, in seconds: median and 90th percentile (None when n is 0).

    Percentiles interpolate linearly between the two nearest ranks (numpy's default; a spreadsheet's PERCENTILE.INC).
    """

    n: int
    p50: float | None
    p90: float | None

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Spread:
        if not seconds:
            return cls(0, None, None)
        p50, p90 = (float(v) for v in np.percentile(np.asarray(seconds, dtype=float), [50, 90]))
        return cls(len(seconds), p50, p90)


@dataclass(frozen=True, slots=True)
class Group:
    """One row of the report: the tickets of one channel, platform or triage state filed in the period."""

    dimension: str
    name: str
    tickets: int
    first_response: Spread  # filed -> an agent's first status change or email
    resolution: Spread  # filed -> solved or closed (and still so), from the status timeline
    # Platform rows only: complaints that addressed the brand (keyword-search hits may not be answered, by the
    # platforms' rules) and of those, how many got their public reply.
    answerable: int | None = None
    replies: int | None = None

    @property
    def coverage(self) -> float | None:
        """Complaints answered on the platform / complaints filed that may be answered there."""
        if self.replies is None or not self.answerable:
            return None
        return self.replies / self.answerable


@dataclass(frozen=True, slots=True)
class Incidents:
    """How many tickets each incident gathered (incidents with a ticket filed in the period)."""

    incidents: int
    tickets: int  # tickets of the period in an incident
    alone: int  # tickets of the period in none
    per_incident: Spread  # here the spread's values are ticket counts, not seconds
    largest: int | None


@dataclass(frozen=True, slots=True)
class Report:
    since: datetime
    until: datetime
    groups: list[Group]
    incidents: Incidents
    suppressed: frozenset[tuple[str, str, str]] = field(default_factory=frozenset)  # (dimension, group, column)

    def dimension(self, name: str) -> list[Group]:
        return [g for g in self.groups if g.dimension == name]

    def group(self, dimension: str, name: str) -> Group | None:
        return next((g for g in self.groups if g.dimension == dimension and g.name == name), None)

    def hidden(self, group: Group, column: str) -> bool:
        """Whether the anonymous export suppressed this cell (it then holds 0 or None, never the true figure)."""
        return (group.dimension, group.name, column) in self.suppressed


@dataclass
class _Acc:
    tickets: int = 0
    waits: list[float] = field(default_factory=list)
    resolutions: list[float] = field(default_factory=list)
    answerable: int = 0
    replies: int = 0


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (_aware(end) - _aware(start)).total_seconds())


def _keys(channel: str, platform: str | None, triage_reason: str | None, priority: int) -> Iterable[tuple[str, str]]:
    yield ALL, ALL
    yield CHANNEL, channel
    if channel == Channel.SOCIAL and platform:
        yield PLATFORM, platform
    yield TRIAGE, NEEDED if triage_reason else NOT_NEEDED
    if triage_reason:
        yield TRIAGE_REASON, triage_reason
    yield PRIORITY, f"P{priority}"
    yield PRIORITY_CHANNEL, f"P{priority} {channel}"


def build_report(*, session: Session, since: datetime, until: datetime) -> Report:
    """Every figure of the report for tickets fairdesk filed in [since, until), all on fairdesk's own clock.

    First response: the earlier of an agent's first status change (``Ticket.first_response_at``) and the first email
    an agent sent; the automatic public reply does not count (it is the same for everyone). Resolution: when the
    ticket last became solved or closed, for tickets that still are. Reach plays no part: the tables hold none.
    """
    period = (col(Ticket.filed_at) >= since, col(Ticket.filed_at) < until)
    in_period = select(Ticket.id).where(*period)
    # sqlalchemy's select: sqlmodel's types at most four columns.
    rows = session.execute(
        sa_select(
            col(Ticket.id),
            col(Ticket.channel),
            col(Ticket.platform),
            col(Ticket.triage_reason),
            col(Ticket.filed_at),
            col(Ticket.first_response_at),
            col(Ticket.found_by),
            col(Ticket.priority),
        ).where(*period)
    ).all()
    first: dict[int, datetime] = {}
    for row in rows:
        if row.first_response_at is not None:
            first[row.id] = _aware(row.first_response_at)
    mails = (
        select(MailOutbox.ticket_id, func.min(MailOutbox.sent_at))
        .where(col(MailOutbox.ticket_id).in_(in_period), MailOutbox.state == MailState.SENT)
        .group_by(col(MailOutbox.ticket_id))
    )
    for ticket_id, sent_at in session.exec(mails):
        if sent_at is not None and (ticket_id not in first or _aware(sent_at) < first[ticket_id]):
            first[ticket_id] = _aware(sent_at)
    replied = set(
        session.exec(
            select(Outbox.ticket_id)
            .where(col(Outbox.ticket_id).in_(in_period), Outbox.state == ReplyState.SENT)
            .distinct()
        )
    )
    resolved = _resolved_at(session, in_period.where(col(Ticket.status).in_(RESOLVED)))

    acc: dict[tuple[str, str], _Acc] = {(CHANNEL, c.value): _Acc() for c in Channel}
    acc[(ALL, ALL)] = _Acc()
    for name in (NEEDED, NOT_NEEDED):
        acc[(TRIAGE, name)] = _Acc()
    for row in rows:
        for key in _keys(row.channel, row.platform, row.triage_reason, row.priority):
            a = acc.setdefault(key, _Acc())
            a.tickets += 1
            if row.id in first:
                a.waits.append(_seconds(row.filed_at, first[row.id]))
            if row.id in resolved:
                a.resolutions.append(_seconds(row.filed_at, resolved[row.id]))
            a.answerable += row.found_by != FoundBy.SEARCH
            a.replies += row.id in replied
    groups = [
        Group(
            dimension=dim,
            name=name,
            tickets=a.tickets,
            first_response=Spread.of(a.waits),
            resolution=Spread.of(a.resolutions),
            answerable=a.answerable if dim == PLATFORM else None,
            replies=a.replies if dim == PLATFORM else None,
        )
        for (dim, name), a in sorted(acc.items(), key=lambda kv: (DIMENSIONS.index(kv[0][0]), _order(kv[0])))
    ]
    return Report(since=since, until=until, groups=groups, incidents=_incidents(session, period))


def _channel_rank(name: str) -> int:
    return [c.value for c in Channel].index(name) if name in Channel.__members__.values() else 9


def _order(key: tuple[str, str]) -> tuple[int, str]:
    dim, name = key
    if dim == CHANNEL:
        return _channel_rank(name), name
    if dim == PRIORITY_CHANNEL:
        priority, _, channel = name.partition(" ")
        return int(priority[1:]) * 10 + _channel_rank(channel), name
    if dim == TRIAGE:
        return (0 if name == NOT_NEEDED else 1), name
    return 0, name


def _resolved_at(session: Session, tickets: SelectOfScalar[int] | SelectOfScalar[None]) -> dict[int, datetime]:
    """When each of these (solved or closed) tickets last moved from an open status to solved or closed."""
    entries = session.exec(
        select(TicketEntry.ticket_id, TicketEntry.body, TicketEntry.created_at)
        .where(TicketEntry.kind == EntryKind.STATUS, col(TicketEntry.ticket_id).in_(tickets))
        .order_by(col(TicketEntry.ticket_id), col(TicketEntry.created_at), col(TicketEntry.id))
    )
    at: dict[int, datetime] = {}
    for ticket_id, body, created in entries:
        if not body.startswith(_STATUS_PREFIX):
            continue  # a public notice on the timeline (e.g. the post was deleted), not a change of status
        status = body.removeprefix(_STATUS_PREFIX)
        if status not in RESOLVED:
            at.pop(ticket_id, None)  # reopened: the earlier resolution no longer counts
        elif ticket_id not in at:
            at[ticket_id] = _aware(created)  # solved then closed: resolved when it was first solved
    return at


def _incidents(session: Session, period: tuple[ColumnElement[bool], ...]) -> Incidents:
    sizes = [
        int(n)
        for _, n in session.exec(
            select(Ticket.incident_id, func.count())
            .where(*period, col(Ticket.incident_id).is_not(None))
            .group_by(col(Ticket.incident_id))
        )
    ]
    total = session.exec(select(func.count()).select_from(Ticket).where(*period)).one()
    return Incidents(
        incidents=len(sizes),
        tickets=sum(sizes),
        alone=int(total) - sum(sizes),
        per_incident=Spread.of(sizes),
        largest=max(sizes, default=None),
    )


@dataclass(frozen=True, slots=True)
class ResponseTimes:
    """Time to first response of one channel, as the dashboard shows it."""

    channel: str
    opened: int  # tickets filed in the period
    answered: int  # of those, with a first agent response
    median_seconds: float | None
    p90_seconds: float | None


def first_response_times(*, session: Session, since: datetime, until: datetime | None = None) -> list[ResponseTimes]:
    """Per channel: time from when fairdesk filed the ticket to the first agent response; the report's own figures."""
    report = build_report(session=session, since=since, until=until or datetime.now(UTC))
    return [
        ResponseTimes(g.name, g.tickets, g.first_response.n, g.first_response.p50, g.first_response.p90)
        for g in report.dimension(CHANNEL)
    ]


DEFAULT_DAYS = 30


def parse_period(since: str | None, until: str | None, *, now: datetime | None = None) -> tuple[datetime, datetime]:
    """[since, until) from what a person typed: ISO dates or times, UTC unless an offset is given. A date alone as
    ``until`` means up to the end of that day; with neither, the last 30 days. Raises ValueError naming the fault."""
    end = now or datetime.now(UTC).replace(microsecond=0)
    if until:
        end = _moment(until, "end")
        if len(until.strip()) == 10:  # a date: that whole day is in the period
            end += timedelta(days=1)
    start = _moment(since, "start") if since else end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise ValueError(f"the period is empty: {start:%Y-%m-%d %H:%M} is not before {end:%Y-%m-%d %H:%M} UTC")
    return start, end


def _moment(text: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{name}: {text[:40]!r} is not a date (2026-11-01) or a time (2026-11-01T09:00)") from None
    return _aware(moment).astimezone(UTC)


def tickets_per_day(*, session: Session, since: datetime) -> dict[tuple[date, str], int]:
    """Tickets filed per (UTC day, channel) since a moment, for the dashboard."""
    counts: dict[tuple[date, str], int] = {}
    for filed, channel in session.exec(select(Ticket.filed_at, Ticket.channel).where(Ticket.filed_at >= since)):
        key = (_aware(filed).date(), channel)
        counts[key] = counts.get(key, 0) + 1
    return counts
