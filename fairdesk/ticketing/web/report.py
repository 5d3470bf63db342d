"""/agent/report: the fairness report over a chosen period, as SVG charts with their tables, and its CSV downloads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fairdesk.ticketing.db import transaction
from fairdesk.ticketing.report import CHANNEL, DEFAULT_DAYS, PLATFORM, TRIAGE, Group, Report, build_report, parse_period
from fairdesk.ticketing.report_export import METHOD, csv_text
from fairdesk.ticketing.report_export import anonymous as anonymise
from fairdesk.ticketing.verdict import MIN_N, duration, verdicts
from fairdesk.ticketing.web.auth import current_agent
from fairdesk.ticketing.web.charts import Chart, Row, bars
from fairdesk.ticketing.web.pages import WebContext, render

router = APIRouter(prefix="/agent")

SHOWN = (CHANNEL, PLATFORM, TRIAGE)  # the dimensions charted; triage reasons stay in the tables and the CSV
PRESETS = (7, 30, 90)


@dataclass(frozen=True, slots=True)
class Figure:
    """One chart and the table beside it: the same groups, the same numbers."""

    key: str
    title: str
    chart: Chart
    groups: list[Group]


def _name(group: Group) -> str:
    return f"{group.dimension}: {group.name}"


def _times(report: Report, metric: str) -> Figure:
    groups = [g for d in SHOWN for g in report.dimension(d) if g.tickets]
    rows = []
    for g in groups:
        s = g.first_response if metric == "first_response" else g.resolution
        text = f"p50 {duration(s.p50)} · p90 {duration(s.p90)} · n {s.n}" if s.n else "none yet"
        css = f"ch-{g.name}" if g.dimension == CHANNEL else "ch-social"
        rows.append(Row(_name(g), s.p50, s.p90, css, text, f"{_name(g)}: {text}"))
    title = "Time to first response" if metric == "first_response" else "Time to resolution"
    return Figure(metric, title, bars(rows), groups)


def _coverage(report: Report) -> Figure:
    groups = [g for g in report.dimension(PLATFORM) if g.tickets]
    rows = []
    for g in groups:
        text = f"{g.coverage:.0%} ({g.replies} of {g.answerable})" if g.coverage is not None else "—"
        rows.append(Row(g.name, g.coverage, 1.0, "ch-social", text, f"{g.name}: {text} complaints answered"))
    return Figure("coverage", "Reply coverage by platform", bars(rows, top=1.0), groups)


def _period(request: Request) -> tuple[str, str]:
    today = datetime.now(UTC).date()
    since = request.query_params.get("since") or (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat()
    until = request.query_params.get("until") or today.isoformat()
    return since, until


@router.get("/report", response_class=HTMLResponse, response_model=None)
def report_page(request: Request) -> Response:
    agent = current_agent(request)
    if not agent:
        return RedirectResponse("/agent/login", status_code=303)
    ctx: WebContext = request.app.state.ctx
    since, until = _period(request)
    today = datetime.now(UTC).date()
    presets = [((today - timedelta(days=d - 1)).isoformat(), today.isoformat(), d) for d in PRESETS]
    common: dict[str, Any] = {"agent": agent, "since": since, "until": until, "presets": presets, "min_n": MIN_N}
    try:
        start, end = parse_period(since, until)
    except ValueError as exc:
        return render(request, "report.html", status_code=400, error=str(exc), report=None, **common)
    with transaction(ctx.sessions) as session:
        report = build_report(session=session, since=start, until=end)
    figures = [_times(report, "first_response"), _times(report, "resolution"), _coverage(report)]
    return render(
        request,
        "report.html",
        report=report,
        figures=figures,
        verdicts=verdicts(report),
        method=METHOD,
        fmt=duration,
        error=None,
        **common,
    )


@router.get("/report.csv", response_model=None)
def report_csv(request: Request, anonymous: bool = False) -> Response:
    """The report as CSV; ``anonymous=1``: the aggregate an operator may publish (small cells suppressed)."""
    agent = current_agent(request)
    if not agent:
        return RedirectResponse("/agent/login", status_code=303)
    ctx: WebContext = request.app.state.ctx
    try:
        start, end = parse_period(*_period(request))
    except ValueError as exc:
        return Response(f"{exc}\n", status_code=400, media_type="text/plain; charset=utf-8")
    with transaction(ctx.sessions) as session:
        report = build_report(session=session, since=start, until=end)
    last = end - timedelta(seconds=1)
    name = f"fairdesk-report-{start:%Y-%m-%d}-to-{last:%Y-%m-%d}{'-anonymous' if anonymous else ''}.csv"
    return Response(
        csv_text(anonymise(report) if anonymous else report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
