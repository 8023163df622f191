"""The clock port (G2).

The core never reads the time itself: a use case asks its `Clock` once and
passes `now` down.  `FrozenClock` is the test double; the system clock lives
in `farebox.clocks.system`; test clocks stored in the database are resolved
by the service layer.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


def ensure_utc(value: datetime) -> datetime:
    """Return `value` as an aware UTC datetime; naive values are refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: farebox works in aware UTC only (G2)")
    return value.astimezone(timezone.utc)


class FrozenClock:
    """A clock that only moves when told to (unit tests, scenarios)."""

    def __init__(self, start: datetime) -> None:
        self._now = ensure_utc(start)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("a clock never goes back")
        self._now += delta
        return self._now

    def set(self, instant: datetime) -> datetime:
        instant = ensure_utc(instant)
        if instant < self._now:
            raise ValueError("a clock never goes back")
        self._now = instant
        return self._now
