"""Horizontal bar charts as plain shapes for an inline SVG: the template draws them, no script runs in the browser."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# SVG user units; the SVG scales to its container through its viewBox.
WIDTH, ROW, TOP = 720, 28, 8
BAR_LEFT, BAR_WIDTH = 200, 280


@dataclass(frozen=True, slots=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    css: str
    title: str


@dataclass(frozen=True, slots=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    rects: list[Rect]
    labels: list[Label]


@dataclass(frozen=True, slots=True)
class Row:
    """One bar: ``value`` drawn dark over ``behind`` drawn light (e.g. the median over the 90th percentile)."""

    name: str
    value: float | None
    behind: float | None = None
    css: str = "ch-social"
    text: str = ""  # what the bar says, written after it
    title: str = ""  # the tooltip and what a screen reader gets for the bar


def bars(rows: Sequence[Row], *, top: float | None = None) -> Chart:
    """One row per item, all on one scale (``top``, or the largest value); a row without a value says ``text``."""
    longest = top or max((max(r.value or 0, r.behind or 0) for r in rows), default=0) or 1
    rects: list[Rect] = []
    labels: list[Label] = []
    for i, row in enumerate(rows):
        y = TOP + i * ROW
        labels.append(Label(BAR_LEFT - 8, y + 15, row.name, "end"))
        end: float = BAR_LEFT
        if row.behind is not None:
            end = BAR_LEFT + row.behind / longest * BAR_WIDTH
            rects.append(Rect(BAR_LEFT, y + 4, end - BAR_LEFT, 16, "p90", row.title))
        if row.value is not None:
            w = row.value / longest * BAR_WIDTH
            end = max(end, BAR_LEFT + w)
            rects.append(Rect(BAR_LEFT, y + 4, w, 16, row.css, row.title))
        labels.append(Label(end + 6, y + 15, row.text, "start"))
    return Chart(WIDTH, TOP * 2 + len(rows) * ROW, rects, labels)
