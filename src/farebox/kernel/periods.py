"""Billing periods (G2): UTC instants, anchored periods, month-end clamping.

Period ``k`` of a subscription starts at ``add_months(anchor, k * step)``
(step 1 for monthly, 12 for yearly), always computed from the anchor so a
Jan 31 anchor gives Feb 28/29 and then Mar 31 again, never drifting.  Periods
are half-open ``[start, end)`` so consecutive periods tile time exactly.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum

__all__ = [
    "Interval",
    "Period",
    "add_months",
    "parse_duration",
    "period_at",
    "period_start",
    "periods_between",
    "seconds_between",
    "utc",
]


class Interval(StrEnum):
    """How often a subscription renews."""

    MONTH = "month"
    YEAR = "year"

    @property
    def months(self) -> int:
        return 12 if self is Interval.YEAR else 1


def _require_utc(value: datetime, name: str = "datetime") -> datetime:
    """Return `value` with ``timezone.utc``; naive or non-UTC values are refused."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    offset = value.utcoffset()
    if offset is None:
        raise ValueError(f"naive {name} {value!r}: farebox works in aware UTC only (G2)")
    if offset != timedelta(0) or value.tzname() != "UTC":
        raise ValueError(f"{name} {value.isoformat()} is not UTC (G2): convert it first")
    return value if value.tzinfo is timezone.utc else value.replace(tzinfo=timezone.utc)


def _require_index(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    return value


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """An aware UTC datetime."""
    return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)


def add_months(anchor: datetime, months: int) -> datetime:
    """`anchor` moved by `months` (may be negative), clamping the day to month end.

    The time of day is preserved.  Raises ValueError outside years 1..9999.
    """
    anchor = _require_utc(anchor, "anchor")
    _require_index(months, "months")
    year, month0 = divmod(anchor.year * 12 + anchor.month - 1 + months, 12)
    if not 1 <= year <= 9999:
        raise ValueError(f"{anchor.isoformat()} + {months} months is out of range")
    day = min(anchor.day, calendar.monthrange(year, month0 + 1)[1])
    return anchor.replace(year=year, month=month0 + 1, day=day)


def period_start(anchor: datetime, interval: Interval | str, index: int) -> datetime:
    """Start of period `index` (0 = the anchor itself); index must be >= 0."""
    if _require_index(index, "index") < 0:
        raise ValueError(f"period index must be >= 0, got {index}")
    return add_months(anchor, index * Interval(interval).months)


def seconds_between(a: datetime, b: datetime) -> int:
    """Whole seconds from `a` to `b` (b >= a); sub-second remainders are truncated."""
    a, b = _require_utc(a, "a"), _require_utc(b, "b")
    if b < a:
        raise ValueError(f"{b.isoformat()} is before {a.isoformat()}")
    delta = b - a
    return delta.days * 86_400 + delta.seconds  # microseconds dropped (truncation)


@dataclass(frozen=True, slots=True)
class Period:
    """The half-open interval [start, end) of billing period `index`."""

    start: datetime
    end: datetime
    index: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _require_utc(self.start, "start"))
        object.__setattr__(self, "end", _require_utc(self.end, "end"))
        _require_index(self.index, "index")
        if not self.start < self.end:
            raise ValueError(f"empty period: {self.start.isoformat()} .. {self.end.isoformat()}")

    def contains(self, t: datetime) -> bool:
        """start <= t < end."""
        return self.start <= _require_utc(t, "t") < self.end

    @property
    def seconds(self) -> int:
        """Length in whole seconds (exact: both ends share the anchor's time of day)."""
        return seconds_between(self.start, self.end)

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


def _period(anchor: datetime, interval: Interval, index: int) -> Period:
    return Period(period_start(anchor, interval, index), period_start(anchor, interval, index + 1), index)


def period_at(anchor: datetime, interval: Interval | str, at: datetime) -> Period:
    """The period containing `at` (at >= anchor), found in O(1).

    The index is estimated from the calendar month difference and then nudged
    by at most a step either way (clamping can only move a start earlier
    within its month).
    """
    interval = Interval(interval)
    anchor, at = _require_utc(anchor, "anchor"), _require_utc(at, "at")
    if at < anchor:
        raise ValueError(f"{at.isoformat()} is before the anchor {anchor.isoformat()}")
    month_diff = (at.year - anchor.year) * 12 + at.month - anchor.month
    index = max(0, month_diff // interval.months)
    while index > 0 and period_start(anchor, interval, index) > at:
        index -= 1
    while period_start(anchor, interval, index + 1) <= at:
        index += 1
    return _period(anchor, interval, index)


def periods_between(
    anchor: datetime, interval: Interval | str, start: datetime, end: datetime
) -> Iterator[Period]:
    """Consecutive whole periods overlapping the window [start, end), in order.

    The first may begin before `start` and the last end after `end`; a window
    starting before the anchor begins with period 0.  Empty when start == end.
    """
    interval = Interval(interval)
    anchor, start, end = _require_utc(anchor, "anchor"), _require_utc(start, "start"), _require_utc(end, "end")
    if end < start:
        raise ValueError(f"window ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    if end == start or end <= anchor:
        return
    period = period_at(anchor, interval, max(start, anchor))
    while period.start < end:
        yield period
        period = _period(anchor, interval, period.index + 1)


MAX_DURATION_SECONDS = 100 * 366 * 86_400
_DURATION = re.compile(r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?")


def parse_duration(text: str) -> timedelta:
    """Parse ``"90m"``, ``"4h"``, ``"36h"``, ``"30s"``, ``"14d"``, ``"1h30m"``, ``"1d2h3m4s"``.

    Units d, h, m, s, each at most once, in that order; no signs or spaces.
    """
    match = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None or not any(match.groups()):
        raise ValueError(f"invalid duration {text!r}: expected e.g. '90m', '4h', '14d', '1h30m'")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if total > MAX_DURATION_SECONDS:
        raise ValueError(f"invalid duration {text!r}: longer than 100 years")
    return timedelta(seconds=total)
