"""Incidents: near-duplicate complaints about one problem, within a window, linked to one incident by content only."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from fairdesk.config.settings import IncidentSettings
from fairdesk.ticketing.categories import OTHER
from fairdesk.ticketing.models import Channel, EntryKind, Incident, Status, Ticket, TicketEntry, saved_id, utcnow
from fairdesk.ticketing.priority import incident_priority

logger = logging.getLogger(__name__)

RULES = "fairdesk.incident_rules"  # Session.info key: the IncidentRules this daemon groups by
OPEN_STATUSES = (Status.NEW, Status.OPEN, Status.PENDING)
CANDIDATES = 500  # the most recent open complaints in the window a new one is compared with
INCIDENT_ACTOR = "fairdesk"
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_NOISE = re.compile(r"(?:^|\s)[@＠][\w.\-]+|https?://\S+")
# Words that say nothing about which problem it is; without them "my internet is down" and "internet down" match.
STOPWORDS = frozenset(
    "a an and are as at be been but by can cant can't do does doesnt doesn't for from get got has have having i i'm "
    "im in is isnt isn't it it's its just me my no not now of on or our so still that the this to too up us was we "
    "what when why with you your you're again any anyone else here there they them all".split()
)


@dataclass(frozen=True, slots=True)
class IncidentRules:
    """When a new complaint joins an incident: same category, at least ``threshold`` similar, posted within
    ``window`` of a linked complaint. ``min_reporters``: distinct reporters before the queue lists the incident."""

    enabled: bool = True
    window: timedelta = timedelta(hours=2)
    threshold: float = 0.5
    min_reporters: int = 2

    @classmethod
    def from_settings(cls, settings: IncidentSettings) -> IncidentRules:
        return cls(
            enabled=settings.enabled,
            window=timedelta(minutes=settings.window_minutes),
            threshold=settings.similarity,
            min_reporters=settings.min_reporters,
        )


DEFAULT_RULES = IncidentRules()


def bind_incident_rules(session: Session, rules: IncidentRules) -> Session:
    """Tell a session how new tickets are grouped (the composition root does this for every session)."""
    session.info[RULES] = rules
    return session


def rules_of(session: Session) -> IncidentRules:
    rules = session.info.get(RULES, DEFAULT_RULES)
    return rules if isinstance(rules, IncidentRules) else DEFAULT_RULES


@lru_cache(maxsize=4096)
def terms(text: str) -> frozenset[str]:
    """The words that name the problem: lower case, no handles or links, no stopwords, plural 's' dropped."""
    words = _WORD.findall(_NOISE.sub(" ", text).lower())
    return frozenset(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words) - (
        STOPWORDS
    )


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of the two texts' terms (0: nothing shared, 1: the same words)."""
    ta, tb = terms(a), terms(b)
    if not ta or not tb:
        return 0.0
    return len(ta & tb) / len(ta | tb)


def window_words(window: timedelta) -> str:
    minutes = round(window.total_seconds() / 60)
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min"


def _apart(a: datetime, b: datetime) -> str:
    minutes = round(abs((a - b).total_seconds()) / 60)
    return f"{minutes} min apart" if minutes < 120 else f"{minutes / 60:.1f} h apart"


@dataclass(frozen=True, slots=True)
class Match:
    ticket_id: int
    incident_id: int | None  # as read, before any lock
    score: float


def best_match(session: Session, ticket: Ticket, rules: IncidentRules) -> Match | None:
    """The open complaint most like this one: same category, another author, within the window, in no closed
    incident and never split out of one. Ties go to the earliest ticket, so grouping is deterministic."""
    if ticket.category is None:
        return None
    low, high = ticket.created_at - rules.window, ticket.created_at + rules.window
    open_incident = select(Incident.id).where(col(Incident.status).in_(OPEN_STATUSES))
    # Only the columns compared: loading whole tickets would cost more than the comparison itself.
    stmt = (
        select(Ticket.id, Ticket.body, Ticket.incident_id)
        .where(
            Ticket.channel == Channel.SOCIAL,
            Ticket.category == ticket.category,
            col(Ticket.id) != ticket.id,
            or_(col(Ticket.platform) != ticket.platform, col(Ticket.author_id) != ticket.author_id),
            col(Ticket.status).in_(OPEN_STATUSES),
            col(Ticket.deleted_at_source).is_(False),
            col(Ticket.created_at) >= low,
            col(Ticket.created_at) <= high,
            or_(
                col(Ticket.incident_id).in_(open_incident),
                and_(col(Ticket.incident_id).is_(None), col(Ticket.incident_reason).is_(None)),
            ),
        )
        .order_by(col(Ticket.created_at).desc(), col(Ticket.id).desc())
        .limit(CANDIDATES)
    )
    best: Match | None = None
    for ticket_id, body, incident_id in session.exec(stmt):
        score = similarity(ticket.body, body)
        if ticket_id is None or score < rules.threshold:
            continue
        if best is None or score > best.score or (score == best.score and ticket_id < best.ticket_id):
            best = Match(ticket_id, incident_id, score)
    return best


def link_new_ticket(session: Session, ticket: Ticket) -> Incident | None:
    """Link a just-opened social complaint to the incident of the complaint most like it, founding one with that
    complaint if it has none. Nothing changes for the reporter: their own ticket, reply and link page stay theirs."""
    rules = rules_of(session)
    if not rules.enabled or ticket.channel != Channel.SOCIAL:
        return None
    match = best_match(session, ticket, rules)
    if match is None:
        return None
    # Locks in one order everywhere (the incident, then its tickets; agents' actions take the same): two daemons
    # cannot found two incidents on one ticket, and concurrent joins recount one after the other.
    seen = match.incident_id
    incident = session.get(Incident, seen, with_for_update=True) if seen is not None else None
    other = session.get(Ticket, match.ticket_id, with_for_update=True, populate_existing=True)
    if other is None:
        return None
    if other.incident_id != seen:  # another daemon linked it meanwhile
        incident = session.get(Incident, other.incident_id, with_for_update=True) if other.incident_id else None
    if other.incident_id is not None and (incident is None or incident.status not in OPEN_STATUSES):
        return None  # its incident was closed meanwhile: that one is over
    why = (
        f"{match.score:.2f} similar to {other.ref}, same category '{ticket.category}', "
        f"{_apart(ticket.created_at, other.created_at)} (window {window_words(rules.window)})"
    )
    if incident is None:
        incident = Incident(
            category=other.category,
            subject=other.subject,
            body=other.body,
            priority=other.priority,
            first_reported_at=other.created_at,
            last_reported_at=other.created_at,
        )
        session.add(incident)
        session.flush()
        _attach(
            session,
            other,
            incident,
            f"founded incident {incident.ref} with {ticket.ref}: "
            + why.replace(f"similar to {other.ref}", f"similar to {ticket.ref}"),
        )
    _attach(session, ticket, incident, f"joined incident {incident.ref}: {why}")
    recount(session, incident)
    logger.info("ticket %s joined incident %s (%.2f similar to %s)", ticket.ref, incident.ref, match.score, other.ref)
    return incident


def _attach(session: Session, ticket: Ticket, incident: Incident, reason: str) -> None:
    ticket.incident_id = saved_id(incident)
    ticket.incident_reason = reason
    session.add(ticket)
    session.add(TicketEntry(ticket_id=saved_id(ticket), kind=EntryKind.INCIDENT, body=reason, actor=INCIDENT_ACTOR))


def recount(session: Session, incident: Incident) -> None:
    """Reporters are distinct authors among the linked tickets, never posts and never audience; the incident's
    priority is its most urgent member's, raised by that count (priority.incident_priority)."""
    session.flush()
    reporters, best, first, last = session.exec(
        select(
            func.count(func.distinct(func.coalesce(Ticket.platform, "") + ":" + func.coalesce(Ticket.author_id, ""))),
            func.min(Ticket.priority),
            func.min(Ticket.created_at),
            func.max(Ticket.created_at),
        ).where(col(Ticket.incident_id) == incident.id)
    ).one()
    incident.reporters = int(reporters or 0)
    if best is not None:
        incident.priority = incident_priority(int(best), incident.reporters)
    if first is not None and last is not None:
        incident.first_reported_at, incident.last_reported_at = first, last
    incident.updated_at = utcnow()
    session.add(incident)


def authors_open_ticket(
    session: Session, *, platform: str, author_id: str, at: datetime, text: str, category: str
) -> Ticket | None:
    """The author's own open social ticket about the same problem, filed within the window of ``at``: their next post
    joins it, so one person posting fifty times is one ticket, one reply and one reporter. The same problem: the same
    category, a post that names none ('other'), or words as alike as an incident needs; a person's other problem
    gets a ticket of its own."""
    rules = rules_of(session)
    if not rules.enabled:
        return None
    stmt = (
        select(Ticket)
        .where(
            Ticket.channel == Channel.SOCIAL,
            Ticket.platform == platform,
            Ticket.author_id == author_id,
            col(Ticket.status).in_(OPEN_STATUSES),
            col(Ticket.created_at) >= at - rules.window,
            col(Ticket.created_at) <= at + rules.window,
        )
        .order_by(col(Ticket.created_at).desc(), col(Ticket.id).desc())
    )
    for ticket in session.exec(stmt):
        if category in (ticket.category, OTHER) or similarity(text, ticket.body) >= rules.threshold:
            return ticket
    return None


def lock_incident_of(session: Session, ticket: Ticket) -> Incident | None:
    """Lock the ticket's incident, if any, before changing the ticket: incident first, then its tickets, everywhere."""
    if ticket.incident_id is None:
        return None
    return session.get(Incident, ticket.incident_id, with_for_update=True)


def raise_priority(session: Session, ticket: Ticket, priority: int) -> None:
    """A later post of the customer's says it is more urgent: the ticket (and its incident) take the more urgent.
    The caller has locked the incident (lock_incident_of)."""
    if priority >= ticket.priority:
        return
    ticket.priority = priority
    session.add(ticket)
    incident = session.get(Incident, ticket.incident_id) if ticket.incident_id else None
    if incident is not None:
        recount(session, incident)
