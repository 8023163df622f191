"""G2: time comes from an injectable clock, in aware UTC."""

from datetime import datetime, timedelta, timezone

import pytest

from farebox.kernel.clock import FrozenClock, ensure_utc


def test_G2_frozen_clock_moves_only_forward():
    clock = FrozenClock(datetime(2026, 1, 31, tzinfo=timezone.utc))
    assert clock.advance(timedelta(days=1)) == datetime(2026, 2, 1, tzinfo=timezone.utc)
    with pytest.raises(ValueError):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError):
        clock.set(datetime(2026, 1, 1, tzinfo=timezone.utc))


def test_G2_naive_datetimes_are_refused_and_offsets_converted():
    with pytest.raises(ValueError):
        ensure_utc(datetime(2026, 1, 1))
    plus_two = timezone(timedelta(hours=2))
    assert ensure_utc(datetime(2026, 1, 1, 2, tzinfo=plus_two)) == datetime(2026, 1, 1, tzinfo=timezone.utc)
