"""Server-rendered SVG for the Billing tab: the daily usage chart and the gauge.

Pure functions of numbers: no JavaScript, no fonts but the page's own, so the
chart reads the same without scripts and on a phone (it scales with its box).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from html import escape

WIDTH, HEIGHT = 640, 200
LEFT, BOTTOM, TOP = 36, 24, 12
MAX_DAYS = 31


@dataclass(frozen=True, slots=True)
class Bar:
    day: date
    units: int


def days_to_show(first: date, last: date, counts: dict[date, int]) -> list[Bar]:
    """One bar per day from `first` to `last` (at most the last 31 days), zero where nothing was counted."""
    if last < first:
        last = first
    start = max(first, last - timedelta(days=MAX_DAYS - 1))
    return [
        Bar(start + timedelta(days=i), counts.get(start + timedelta(days=i), 0)) for i in range((last - start).days + 1)
    ]


def nice_top(value: int) -> int:
    """The axis top: the first of 1, 2, 5, 10, 20, 50, ... that is at least `value`."""
    base = 1
    while True:
        for step in (1, 2, 5):
            if base * step >= value:
                return base * step
        base *= 10


def daily_chart(bars: list[Bar], *, unit: str, title: str) -> str:
    """A bar chart of daily counts as an inline SVG document fragment."""
    top = nice_top(max((b.units for b in bars), default=0))
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    n = max(len(bars), 1)
    slot = plot_w / n
    bar_w = max(2.0, slot * 0.7)
    total = sum(b.units for b in bars)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-title">{escape(title)}</title>',
        f'<desc id="chart-desc">{total} {escape(unit)}(s) over {len(bars)} day(s); the highest day has '
        f'{max((b.units for b in bars), default=0)}.</desc>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - 8}" y2="{TOP + plot_h}" class="axis"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end" class="tick">{top}</text>',
        f'<text x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end" class="tick">0</text>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{WIDTH - 8}" y2="{TOP}" class="grid"/>',
    ]
    for i, b in enumerate(bars):
        h = plot_h * b.units / top
        x = LEFT + i * slot + (slot - bar_w) / 2
        label = f"{b.day.isoformat()}: {b.units} {unit}{'s' if b.units != 1 else ''}"
        parts.append(
            f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
            f'class="bar"><title>{escape(label)}</title></rect>'
        )
        if i == 0 or i == len(bars) - 1 or (i % 7 == 0 and i <= len(bars) - 4):
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle" '
                f'class="tick">{b.day.strftime("%d %b")}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def gauge(used: int, of: int | None) -> dict[str, int | None]:
    """The attendee-credit gauge (L6): percent used, capped at 100 for the bar, and what is left."""
    if not of:
        return {"percent": None, "bar": 0, "left": None}
    pct = used * 100 // of
    return {"percent": pct, "bar": min(100, pct), "left": max(0, of - used)}
