"""The fairness report's verdict: plain sentences saying where one channel, platform or triage state waits longer."""

from __future__ import annotations

from collections.abc import Callable

from fairdesk.ticketing.report import CHANNEL, NEEDED, PLATFORM, TRIAGE, Group, Report, Spread

MIN_N = 5  # fewer tickets than this in a group: no percentile is compared (nor published: see report_export)
GAP = 1.25  # the slower group's median is at least this many times the faster one's: called out as a gap
MIN_GAP_SECONDS = 60  # nor when the medians are less than a minute apart: nobody waits longer in any way that matters
COVERAGE_GAP = 0.05  # reply coverage differing by this much (5 points) is called out
_PLURAL = {CHANNEL: "channels", PLATFORM: "platforms", TRIAGE: "tickets with and without human triage"}
_METRICS: dict[str, tuple[Callable[[Group], Spread], str, str, str]] = {
    # name: (the group's spread, its cell in the anonymous export, what a slower group does, which tickets count)
    "first response": (
        lambda g: g.first_response,
        "first_response",
        "wait {ratio} longer for a first response",
        "answered",
    ),
    "resolution": (lambda g: g.resolution, "resolution", "take {ratio} longer to be resolved", "resolved"),
}


def duration(seconds: float | None) -> str:
    """A time span for people: 40 s, 12 min, 3.2 h, 2.5 d; an em dash when there is none."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def label(group: Group) -> str:
    """How a sentence names a group's tickets."""
    if group.dimension == CHANNEL:
        return f"{group.name} tickets"
    if group.dimension == PLATFORM:
        return f"tickets from {group.name}"
    if group.dimension == TRIAGE:
        return "tickets that needed human triage" if group.name == NEEDED else "tickets the classifier could judge"
    return f"{group.name} tickets"


def _count(report: Report, group: Group, column: str, n: int) -> str:
    return "suppressed" if report.hidden(group, column) else str(n)


def _compare(report: Report, dimension: str, metric: str) -> str | None:
    spread_of, column, slower, needs = _METRICS[metric]
    groups = [g for g in report.dimension(dimension) if g.tickets or report.hidden(g, "tickets")]
    if len(groups) < 2:
        return None  # one platform, or one channel in use: nothing to compare
    ready = [g for g in groups if spread_of(g).n >= MIN_N and not report.hidden(g, column)]
    if len(ready) < 2:
        counts = ", ".join(f"{g.name} {_count(report, g, column, spread_of(g).n)}" for g in groups)
        return (
            f"Not enough data to compare {_PLURAL[dimension]} on {metric}: at least two need {MIN_N} or more "
            f"{needs} tickets ({needs}: {counts})."
        )
    ready.sort(key=lambda g: spread_of(g).p50 or 0.0)
    fast, slow = ready[0], ready[-1]
    fast_p50, slow_p50 = spread_of(fast).p50 or 0.0, spread_of(slow).p50 or 0.0
    if slow_p50 - fast_p50 < MIN_GAP_SECONDS or (fast_p50 > 0 and slow_p50 / fast_p50 < GAP):
        listed = ", ".join(f"{g.name} {duration(spread_of(g).p50)}" for g in ready)
        return (
            f"{_PLURAL[dimension].capitalize()} are served alike on {metric}: p50 within {GAP - 1:.0%} or a minute "
            f"of each other ({listed})."
        )
    ratio = f"{slow_p50 / fast_p50:.1f}x" if fast_p50 > 0 else duration(slow_p50)
    sentence = f"{label(slow)} {slower.format(ratio=ratio)} than {label(fast)} at p50"
    return f"{sentence[0].upper()}{sentence[1:]} ({duration(slow_p50)} vs {duration(fast_p50)})."


def _coverage(report: Report) -> str | None:
    groups = [g for g in report.dimension(PLATFORM) if g.tickets or report.hidden(g, "tickets")]
    ready = [g for g in groups if (g.answerable or 0) >= MIN_N and not report.hidden(g, "replies")]
    if not groups:
        return None
    if not ready and any(report.hidden(g, "replies") for g in groups):
        return "Reply coverage is not published: a platform had too few replies or complaints to show safely."
    if not ready:
        counts = ", ".join(f"{g.name} {g.answerable}" for g in groups)
        return (
            f"Not enough data for reply coverage: it needs a platform with {MIN_N} or more complaints that addressed "
            f"the brand ({counts})."
        )
    ready.sort(key=lambda g: g.coverage or 0.0)
    low, high = ready[0], ready[-1]
    if len(ready) == 1:
        return f"Public replies reached {low.coverage:.0%} of complaints on {low.name}; no other platform to compare."
    if (high.coverage or 0.0) - (low.coverage or 0.0) >= COVERAGE_GAP:
        return (
            f"Public replies reached {high.coverage:.0%} of complaints on {high.name} "
            f"but only {low.coverage:.0%} on {low.name}."
        )
    listed = ", ".join(f"{g.name} {g.coverage:.0%}" for g in ready)
    return f"Public replies reached complaints on every platform alike ({listed})."


def verdicts(report: Report) -> list[str]:
    """Plain sentences, one per comparison: channels, platforms and triage on first response and resolution at the
    median, then reply coverage by platform. Groups with fewer than ``MIN_N`` tickets measured are never compared."""
    out = []
    for dimension in (CHANNEL, PLATFORM, TRIAGE):
        for metric in _METRICS:
            if (sentence := _compare(report, dimension, metric)) is not None:
                out.append(sentence)
    if (sentence := _coverage(report)) is not None:
        out.append(sentence)
    if not out or not any(g.tickets for g in report.groups):
        return ["Not enough data: no tickets were filed in this period."]
    return out
