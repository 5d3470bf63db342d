"""The fairness report as text: the anonymous aggregate an operator may publish, CSV, and the terminal table."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

from fairdesk.ticketing.report import ALL, DIMENSIONS, PRIORITY_CHANNEL, Group, Incidents, Report, Spread
from fairdesk.ticketing.verdict import MIN_N, duration, verdicts

SUPPRESSED = "suppressed"
CROSS = (PRIORITY_CHANNEL,)  # left out of the anonymous export
INCIDENTS = ("incidents", ALL)  # the (dimension, group) under which incident cells are suppressed
COUNTS = (
    "tickets",
    "first_response",
    "resolution",
    "answerable",
    "replies",
)  # the cells that count tickets in each group
CSV_COLUMNS = (
    "period_start",
    "period_end",
    "dimension",
    "group",
    "tickets",
    "first_response_n",
    "first_response_p50_s",
    "first_response_p90_s",
    "resolved_n",
    "resolution_p50_s",
    "resolution_p90_s",
    "answerable",
    "public_replies",
    "reply_coverage",
    "incidents",
    "tickets_in_incidents",
    "tickets_per_incident_p50",
    "tickets_per_incident_p90",
    "largest_incident",
)
METHOD = (
    "Times run from when fairdesk filed the ticket. p50/p90: percentiles interpolated between the nearest ranks. "
    "fairdesk records no reach (followers, likes, reposts), so no figure can depend on it."
)


def _cell(group: Group, column: str) -> int:
    if column == "tickets":
        return group.tickets
    if column == "first_response":
        return group.first_response.n
    if column == "resolution":
        return group.resolution.n
    if column == "answerable":
        return group.answerable or 0
    return group.replies or 0


def _small(n: int) -> bool:
    return 0 < n < MIN_N


def anonymous(report: Report) -> Report:
    """The report an operator can publish: counts and percentiles only, and no cell measuring 1 to 4 tickets.

    A small cell is suppressed; so is the next smallest of its dimension when it is the only one, because the
    dimension's total is published and would give it away by subtraction; cross-tabulations are left out. Suppressed
    cells hold 0 or None, so no output can show the true figure by mistake. Nothing in a report names a ticket,
    customer or text to begin with.
    """
    # A cross-tabulation (priority x channel) could be worked out from the priority and channel totals around a
    # suppressed cell; one-way tables only are published.
    report = replace(report, groups=[g for g in report.groups if g.dimension not in CROSS])
    hidden: set[tuple[str, str, str]] = set()
    for dimension in DIMENSIONS:
        groups = report.dimension(dimension)
        for column in COUNTS:
            small = [g for g in groups if _small(_cell(g, column))]
            others = sorted((g for g in groups if _cell(g, column) and g not in small), key=lambda g: _cell(g, column))
            if len(small) == 1 and others and dimension != ALL:
                small.append(others[0])
            hidden |= {(g.dimension, g.name, column) for g in small}
    for g in report.groups:
        # Coverage would give a hidden count back: it goes with any of the three (on the rows that have it).
        if g.replies is not None and {(g.dimension, g.name, c) for c in ("tickets", "answerable", "replies")} & hidden:
            hidden |= {(g.dimension, g.name, c) for c in ("answerable", "replies")}
    groups = [_blank(g, hidden) for g in report.groups]
    incidents, more = _blank_incidents(report.incidents)
    return replace(report, groups=groups, incidents=incidents, suppressed=frozenset(hidden | more))


def _blank(group: Group, hidden: set[tuple[str, str, str]]) -> Group:
    def gone(column: str) -> bool:
        return (group.dimension, group.name, column) in hidden

    empty = Spread(0, None, None)
    return replace(
        group,
        tickets=0 if gone("tickets") else group.tickets,
        first_response=empty if gone("first_response") else group.first_response,
        resolution=empty if gone("resolution") else group.resolution,
        answerable=(0 if gone("answerable") else group.answerable) if group.answerable is not None else None,
        replies=(0 if gone("replies") else group.replies) if group.replies is not None else None,
    )


def _blank_incidents(incidents: Incidents) -> tuple[Incidents, set[tuple[str, str, str]]]:
    hidden = set()
    if _small(incidents.tickets) or _small(incidents.alone):
        hidden |= {(*INCIDENTS, "tickets"), (*INCIDENTS, "alone")}
        incidents = replace(incidents, tickets=0, alone=0)
    if incidents.incidents < MIN_N:
        hidden.add((*INCIDENTS, "per_incident"))
        incidents = replace(incidents, per_incident=Spread(0, None, None), largest=None)
    return incidents, hidden


def _num(value: float | int | None) -> str:
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{value:.0f}"


def csv_text(report: Report) -> str:
    """One row per group (the ``all`` row also carries the incident figures); suppressed cells read 'suppressed'."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for g in report.groups:
        fr, rs = g.first_response, g.resolution
        coverage = "" if g.coverage is None else f"{g.coverage:.3f}"
        row = [report.since.isoformat(), report.until.isoformat(), g.dimension, g.name]
        row += _cells(report, g, "tickets", g.tickets)
        row += _cells(report, g, "first_response", fr.n, fr.p50, fr.p90)
        row += _cells(report, g, "resolution", rs.n, rs.p50, rs.p90)
        row += _cells(report, g, "answerable", g.answerable)
        row += _cells(report, g, "replies", g.replies)
        row += [SUPPRESSED] if report.hidden(g, "replies") and g.replies is not None else [coverage]
        row += _incident_cells(report) if g.dimension == ALL else [""] * 5
        writer.writerow(row)
    return out.getvalue()


def _cells(report: Report, group: Group, column: str, *values: float | int | None) -> list[str]:
    if report.hidden(group, column):
        return [SUPPRESSED] * len(values)
    return [_num(v) for v in values]


def _incident_cells(report: Report) -> list[str]:
    inc = report.incidents
    joined = SUPPRESSED if (*INCIDENTS, "tickets") in report.suppressed else str(inc.tickets)
    if (*INCIDENTS, "per_incident") in report.suppressed:
        return [str(inc.incidents), joined, SUPPRESSED, SUPPRESSED, SUPPRESSED]
    p = inc.per_incident
    return [str(inc.incidents), joined, _fmt_count(p.p50), _fmt_count(p.p90), _num(inc.largest)]


def _fmt_count(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def table_text(report: Report) -> str:
    """The report for a terminal: one line per group, then incidents, the verdict and how it was measured."""

    def show(group: Group, column: str, text: str) -> str:
        return "*" if report.hidden(group, column) else text

    def spread(group: Group, column: str, s: Spread) -> str:
        return show(group, column, f"{s.n:>5} {duration(s.p50):>8} {duration(s.p90):>7}")

    lines = [
        f"fairdesk report: tickets filed from {report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC",
        "",
        f"{'':<32}{'':>8}  {'first response':^22}  {'resolution':^22}  {'public replies':^23}",
        f"{'group':<32}{'tickets':>8}  {'n':>5} {'p50':>8} {'p90':>7}  {'n':>5} {'p50':>8} {'p90':>7}  "
        f"{'due':>6} {'sent':>6} {'coverage':>9}",
    ]
    for g in report.groups:
        name = "all tickets" if g.dimension == ALL else f"{g.dimension}: {g.name}"
        due = "" if g.answerable is None else show(g, "answerable", str(g.answerable))
        replies = "" if g.replies is None else show(g, "replies", str(g.replies))
        coverage = "" if g.coverage is None else show(g, "replies", f"{g.coverage:.0%}")
        lines.append(
            f"{name[:32]:<32}{show(g, 'tickets', str(g.tickets)):>8}  "
            f"{spread(g, 'first_response', g.first_response):>22}  {spread(g, 'resolution', g.resolution):>22}  "
            f"{due:>6} {replies:>6} {coverage:>9}"
        )
    lines.append("")
    lines.append(_incident_line(report))
    lines += ["", "Verdict:"] + [f"- {sentence}" for sentence in verdicts(report)]
    lines += [
        "",
        METHOD,
        "Public replies: due counts the complaints that addressed the brand (a keyword-search hit may "
        "not be answered, by the platforms' rules); coverage is sent / due.",
    ]
    if report.suppressed:
        lines.append(
            f"* suppressed: a cell of 1 to {MIN_N - 1} tickets, or one that would give such a cell away by subtraction."
        )
    return "\n".join(lines) + "\n"


def _incident_line(report: Report) -> str:
    inc = report.incidents
    if not inc.incidents:
        return "Incidents: none in this period."
    joined = "" if (*INCIDENTS, "tickets") in report.suppressed else f" gathered {inc.tickets} tickets"
    if (*INCIDENTS, "per_incident") in report.suppressed:
        return f"Incidents: {inc.incidents}{joined} (too few incidents to show their sizes)."
    p = inc.per_incident
    return (
        f"Incidents: {inc.incidents}{joined}; tickets per incident p50 {_fmt_count(p.p50)}, "
        f"p90 {_fmt_count(p.p90)}, largest {inc.largest}."
    )
