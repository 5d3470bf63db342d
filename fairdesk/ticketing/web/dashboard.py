"""/agent/dashboard: tickets per day and time to first response, by channel, drawn as inline SVG (no scripts)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fairdesk.ticketing.db import transaction
from fairdesk.ticketing.models import Channel
from fairdesk.ticketing.report import ResponseTimes, first_response_times, tickets_per_day
from fairdesk.ticketing.web.auth import current_agent
from fairdesk.ticketing.web.charts import Label, Rect
from fairdesk.ticketing.web.pages import WebContext, render

router = APIRouter(prefix="/agent")

PERIODS = (7, 14, 30)
CHANNELS = [c.value for c in Channel]
# The chart's drawing area, in SVG user units; the SVG scales to its container through its viewBox.
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 220, 36, 24, 10
BAR_ROW, BAR_LEFT, BAR_WIDTH = 30, 70, 330


def _nice_max(value: float) -> float:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000):
        if value <= step:
            return float(step)
    return float(value)


def daily_chart(counts: dict[tuple[date, str], int], days: list[date]) -> tuple[list[Rect], list[Label], float]:
    """Stacked bars, one per day, one colour per channel."""
    totals = [sum(counts.get((d, c), 0) for c in CHANNELS) for d in days]
    top = _nice_max(max(totals, default=0) or 1)
    plot_h = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / max(len(days), 1)
    rects: list[Rect] = []
    labels: list[Label] = []
    for i, day in enumerate(days):
        y: float = HEIGHT - BOTTOM
        for channel in CHANNELS:
            n = counts.get((day, channel), 0)
            if not n:
                continue
            h = n / top * plot_h
            y -= h
            x = LEFT + i * slot + slot * 0.15
            rects.append(Rect(x, y, slot * 0.7, h, f"ch-{channel}", f"{day}: {n} {channel}"))
        if len(days) <= 14 or i % 3 == 0:
            labels.append(Label(LEFT + i * slot + slot / 2, HEIGHT - 8, day.strftime("%m-%d")))
    for frac in (0, 0.5, 1):
        labels.append(Label(LEFT - 6, HEIGHT - BOTTOM - frac * plot_h + 4, f"{top * frac:g}", "end"))
    return rects, labels, top


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def response_chart(times: list[ResponseTimes]) -> tuple[list[Rect], list[Label], int]:
    """One row per channel: the 90th percentile as a light bar and the median as a dark bar over it."""
    longest = max((t.p90_seconds or 0 for t in times), default=0) or 1
    rects: list[Rect] = []
    labels: list[Label] = []
    for i, t in enumerate(times):
        y = TOP + i * BAR_ROW
        labels.append(Label(BAR_LEFT - 8, y + 15, t.channel, "end"))
        if t.p90_seconds is not None and t.median_seconds is not None:
            rects.append(
                Rect(
                    BAR_LEFT,
                    y + 4,
                    t.p90_seconds / longest * BAR_WIDTH,
                    16,
                    "p90",
                    f"{t.channel}: 90% within {_hours(t.p90_seconds)}",
                )
            )
            rects.append(
                Rect(
                    BAR_LEFT,
                    y + 4,
                    t.median_seconds / longest * BAR_WIDTH,
                    16,
                    f"ch-{t.channel}",
                    f"{t.channel}: median {_hours(t.median_seconds)}",
                )
            )
            labels.append(
                Label(
                    BAR_LEFT + t.p90_seconds / longest * BAR_WIDTH + 6,
                    y + 15,
                    f"median {_hours(t.median_seconds)} · p90 {_hours(t.p90_seconds)}",
                    "start",
                )
            )
        else:
            labels.append(Label(BAR_LEFT + 6, y + 15, "no responses yet", "start"))
    return rects, labels, TOP * 2 + len(times) * BAR_ROW


@router.get("/dashboard", response_class=HTMLResponse, response_model=None)
def dashboard(request: Request, days: int = 14) -> Response:
    agent = current_agent(request)
    if not agent:
        return RedirectResponse("/agent/login", status_code=303)
    ctx: WebContext = request.app.state.ctx
    days = days if days in PERIODS else 14
    today = datetime.now(UTC).date()
    day_list = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]
    since = datetime.combine(day_list[0], datetime.min.time(), tzinfo=UTC)
    with transaction(ctx.sessions) as session:
        counts = tickets_per_day(session=session, since=since)
        times = first_response_times(session=session, since=since)
    bars, bar_labels, _ = daily_chart(counts, day_list)
    rt_rects, rt_labels, rt_height = response_chart(times)
    table = [(d, [counts.get((d, c), 0) for c in CHANNELS]) for d in day_list]
    return render(
        request,
        "dashboard.html",
        agent=agent,
        days=days,
        periods=PERIODS,
        channels=CHANNELS,
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        baseline=HEIGHT - BOTTOM,
        bars=bars,
        bar_labels=bar_labels,
        table=table,
        times=times,
        rt_rects=rt_rects,
        rt_labels=rt_labels,
        rt_height=rt_height,
        fmt=_hours,
    )
