"""The soak's reckoning: what the platforms served and received against what the database holds, as figures."""

from __future__ import annotations

import bisect
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import col

from fairdesk.ticketing.models import AccountState, LedgerEntry, Outbox, ReplyState, Ticket

UNSETTLED = (ReplyState.PENDING, ReplyState.SENDING, ReplyState.UNCERTAIN)


def restart_gaps(restarts: list[float], polls: list[float], end: float) -> list[float]:
    """For each restart, seconds until the account was next polled; with no poll by ``end``, the time until then."""
    polls = sorted(polls)
    gaps = []
    for restart in restarts:
        i = bisect.bisect_left(polls, restart)
        gaps.append((polls[i] if i < len(polls) else end) - restart)
    return gaps


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(q / 100 * len(ordered)) - 1, 0)]


def duplicates(keys: list[str]) -> int:
    """How many extra copies there are: two replies to one post count as one duplicate."""
    return sum(n - 1 for n in Counter(keys).values() if n > 1)


@dataclass
class Platform:
    """What one platform offered and received, and what the database recorded for it."""

    name: str
    offered: set[str]  # posted on X / in the sample feed
    served: set[str]  # returned by the mentions endpoint / released by the feed (below the stored cursor)
    replies: list[str]  # in_reply_to of every reply the platform received
    ledger: set[str] = field(default_factory=set)
    polls: list[float] = field(default_factory=list)

    @property
    def lost(self) -> set[str]:
        return self.served - self.ledger

    @property
    def never_served(self) -> set[str]:
        return self.offered - self.served


@dataclass
class Figures:
    platforms: list[Platform]
    tickets: int
    duplicate_tickets: int
    outbox: dict[str, int]
    sent_not_on_platform: int
    gaps: dict[str, list[float]]
    own_gaps: list[float]  # per restart, until the new daemon itself asked X for mentions (inf: it never did)
    bound: float
    latencies: list[float]
    max_rss_kb: int
    kills: Counter[str]
    exits: list[str]
    faults: dict[str, int]
    drained: bool
    wall: float

    @property
    def lost(self) -> int:
        return sum(len(p.lost) for p in self.platforms)

    @property
    def duplicate_replies(self) -> int:
        return sum(duplicates(p.replies) for p in self.platforms)

    @property
    def never_served(self) -> int:
        return sum(len(p.never_served) for p in self.platforms)

    @property
    def unsettled(self) -> int:
        return sum(self.outbox.get(state, 0) for state in UNSETTLED)

    @property
    def longest_gap(self) -> float:
        return max((g for gaps in self.gaps.values() for g in gaps), default=0.0)

    def failures(self) -> list[str]:
        out = []
        if self.lost:
            out.append(f"{self.lost} served mention(s) have no ledger entry")
        if self.duplicate_tickets:
            out.append(f"{self.duplicate_tickets} duplicate ticket(s)")
        if self.duplicate_replies:
            out.append(f"{self.duplicate_replies} duplicate reply(ies) on the platforms")
        if self.longest_gap > self.bound:
            out.append(f"an account went {self.longest_gap:.1f} s unpolled after a restart (bound {self.bound:.0f} s)")
        if self.never_served:
            out.append(f"{self.never_served} posted mention(s) never fetched by the end of the drain (stalled)")
        if self.unsettled:
            out.append(f"{self.unsettled} reply(ies) still pending, sending or uncertain after the drain (stalled)")
        if self.sent_not_on_platform:
            out.append(f"{self.sent_not_on_platform} reply(ies) recorded as sent that the platform never received")
        if self.exits:
            out.append(f"{len(self.exits)} daemon(s) exited without being killed")
        return out


def read_database(engine: Engine, platforms: list[Platform]) -> tuple[int, int, dict[str, int], dict[str, set[str]]]:
    """Fill each platform's ledger; return tickets, duplicate tickets, outbox states and sent remote ids."""
    with engine.connect() as conn:
        for platform in platforms:
            query = select(col(LedgerEntry.post_id)).where(col(LedgerEntry.platform) == platform.name)
            platform.ledger = set(conn.execute(query).scalars())
        tickets = conn.execute(select(func.count()).select_from(Ticket)).scalar() or 0
        per_post = (
            select(func.count().label("n"))
            .select_from(Ticket)
            .where(col(Ticket.post_id).is_not(None))
            .group_by(col(Ticket.platform), col(Ticket.post_id))
            .subquery()
        )
        duplicate_tickets = conn.execute(select(func.coalesce(func.sum(per_post.c.n - 1), 0))).scalar() or 0
        state = col(Outbox.state)
        states: dict[str, int] = {name: n for name, n in conn.execute(select(state, func.count()).group_by(state))}
        sent: dict[str, set[str]] = {}
        sent_rows = select(col(Outbox.platform), col(Outbox.in_reply_to)).where(state == ReplyState.SENT)
        for platform_name, in_reply_to in conn.execute(sent_rows):
            sent.setdefault(platform_name, set()).add(in_reply_to)
        cursor = conn.execute(select(col(AccountState.cursor)).where(col(AccountState.platform) == "sample")).scalar()
    states["_sample_cursor"] = int(cursor or 0)
    return int(tickets), int(duplicate_tickets), states, sent


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


def _own(gaps: list[float]) -> str:
    polled = [g for g in gaps if math.isfinite(g)]
    if not gaps:
        return "no restarts"
    if not polled:
        return f"none of {len(gaps)} restarted daemons polled X before being killed or stopped"
    return (
        f"p50 {percentile(polled, 50):.1f} s, max {max(polled):.1f} s (for information; "
        f"{len(gaps) - len(polled)} of {len(gaps)} were killed or stopped before their first poll)"
    )


def table(f: Figures, params: dict[str, Any]) -> str:
    """The figures as printed; tests/test_soak.py reads the first column's labels."""
    by = {p.name: p for p in f.platforms}
    rows: list[tuple[str, str]] = [
        ("mentions posted", " + ".join(f"{len(p.offered):,} {p.name}" for p in f.platforms)),
        ("mentions served", f"{sum(len(p.served) for p in f.platforms):,}"),
        ("ledger entries", f"{sum(len(p.ledger) for p in f.platforms):,}"),
        ("tickets", f"{f.tickets:,}"),
        ("replies sent", " + ".join(f"{len(p.replies):,} {p.name}" for p in f.platforms)),
        ("lost", f"{f.lost}"),
        ("duplicate tickets", f"{f.duplicate_tickets}"),
        ("duplicate replies", f"{f.duplicate_replies}"),
        ("never served (stalled)", f"{f.never_served}"),
        ("replies unsettled after drain", f"{f.unsettled}"),
        ("replies failed (gave up)", f"{f.outbox.get(ReplyState.FAILED, 0)}"),
        (
            "longest polling gap after a restart",
            f"{f.longest_gap:.1f} s (bound {f.bound:.0f} s = 3 poll intervals + 10 s); "
            + ", ".join(f"{name} {max(g, default=0):.1f} s" for name, g in f.gaps.items()),
        ),
        ("restarted daemon's own first X poll", _own(f.own_gaps)),
        (
            "mention->reply p50 / p95 (x)",
            f"{_seconds(percentile(f.latencies, 50))} / {_seconds(percentile(f.latencies, 95))}",
        ),
        ("daemon RSS (max)", f"{f.max_rss_kb / 1024:.0f} MB"),
        ("kills", f"{sum(f.kills.values())} ({', '.join(f'{n} {k}' for k, n in sorted(f.kills.items())) or 'none'})"),
        ("faults injected", f"{sum(f.faults.values())} ({', '.join(f'{n} {k}' for k, n in sorted(f.faults.items()))})"),
        ("unexpected daemon exits", f"{len(f.exits)}"),
        ("drained", "yes" if f.drained else "no (no progress for the drain period, or its cap)"),
        ("wall time", f"{f.wall:.0f} s"),
    ]
    header = ", ".join(f"{k} {v}" for k, v in params.items())
    width = max(len(label) for label, _ in rows)
    lines = [f"soak: {header}", *(f"  {label:<{width}}  {value}" for label, value in rows)]
    lines += [f"  lost on {name}: {sorted(p.lost)[:10]}" for name, p in by.items() if p.lost]
    return "\n".join(lines)
