"""G2: time is UTC; periods start at the billing anchor and clamp to month end."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farebox.kernel.periods import (
    Interval,
    Period,
    add_months,
    parse_duration,
    period_at,
    period_start,
    periods_between,
    seconds_between,
    utc,
)

intervals = st.sampled_from(list(Interval))
anchors = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 12, 31), timezones=st.just(timezone.utc)
)


def reference_add_months(anchor: datetime, months: int) -> datetime:
    """Independent, deliberately naive month arithmetic."""
    year, month = anchor.year, anchor.month
    for _ in range(months):
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    last = calendar.monthrange(year, month)[1]
    return anchor.replace(year=year, month=month, day=min(anchor.day, last))


def reference_period_at(anchor: datetime, interval: Interval, at: datetime) -> tuple[int, datetime, datetime]:
    """Walk period by period from the anchor (slow, obviously right)."""
    step = 12 if interval is Interval.YEAR else 1
    index = 0
    while reference_add_months(anchor, (index + 1) * step) <= at:
        index += 1
    return index, reference_add_months(anchor, index * step), reference_add_months(anchor, (index + 1) * step)


# -- examples -----------------------------------------------------------------


def test_G2_utc_helper() -> None:
    assert utc(2027, 1, 31, 12, 30, 5) == datetime(2027, 1, 31, 12, 30, 5, tzinfo=timezone.utc)
    assert utc(2027, 1, 31).tzinfo is timezone.utc


def test_G2_interval_is_a_str_enum() -> None:
    assert Interval("month") is Interval.MONTH and Interval.YEAR == "year"


@pytest.mark.parametrize(
    ("year", "expected"),
    [
        (
            2027,
            [utc(2027, 1, 31, 9), utc(2027, 2, 28, 9), utc(2027, 3, 31, 9), utc(2027, 4, 30, 9), utc(2027, 5, 31, 9)],
        ),
        (
            2028,
            [utc(2028, 1, 31, 9), utc(2028, 2, 29, 9), utc(2028, 3, 31, 9), utc(2028, 4, 30, 9), utc(2028, 5, 31, 9)],
        ),
    ],
)
def test_G2_jan_31_anchor_clamps_without_drifting(year: int, expected: list[datetime]) -> None:
    anchor = utc(year, 1, 31, 9)
    assert [period_start(anchor, Interval.MONTH, i) for i in range(5)] == expected
    assert [add_months(anchor, i) for i in range(5)] == expected


def test_G2_add_months_examples() -> None:
    assert add_months(utc(2027, 12, 15), 1) == utc(2028, 1, 15)
    assert add_months(utc(2027, 3, 31), -1) == utc(2027, 2, 28)
    assert add_months(utc(2027, 1, 31), 13) == utc(2028, 2, 29)
    assert add_months(utc(2027, 1, 31, 23, 59, 59), 0) == utc(2027, 1, 31, 23, 59, 59)
    with pytest.raises(ValueError):
        add_months(utc(9999, 12, 1), 1)


def test_G2_annual_from_feb_29() -> None:
    anchor = utc(2024, 2, 29, 10)
    starts = [period_start(anchor, Interval.YEAR, i) for i in range(6)]
    assert starts == [utc(2024, 2, 29, 10), utc(2025, 2, 28, 10), utc(2026, 2, 28, 10),
                      utc(2027, 2, 28, 10), utc(2028, 2, 29, 10), utc(2029, 2, 28, 10)]  # fmt: skip
    assert period_at(anchor, Interval.YEAR, utc(2025, 2, 28, 9)).index == 0
    assert period_at(anchor, Interval.YEAR, utc(2025, 2, 28, 10)).index == 1
    assert period_at(anchor, Interval.YEAR, utc(2028, 2, 29, 9)) == Period(starts[3], starts[4], 3)


@pytest.mark.parametrize(
    "bad",
    [datetime(2027, 1, 1), datetime(2027, 1, 1, tzinfo=timezone(timedelta(hours=1))),
     datetime(2027, 1, 1, tzinfo=ZoneInfo("Europe/London"))],  # fmt: skip
)
def test_G2_naive_and_non_utc_datetimes_refused(bad: datetime) -> None:
    with pytest.raises(ValueError):
        add_months(bad, 1)
    with pytest.raises(ValueError):
        period_at(utc(2027, 1, 1), Interval.MONTH, bad)
    with pytest.raises(ValueError):
        Period(bad, utc(2030, 1, 1), 0)
    with pytest.raises(ValueError):
        seconds_between(utc(2020, 1, 1), bad)


def test_G2_other_utc_tzinfos_accepted_and_normalised() -> None:
    anchor = datetime(2027, 1, 31, tzinfo=ZoneInfo("UTC"))
    assert add_months(anchor, 1) == utc(2027, 2, 28)
    assert add_months(anchor, 1).tzinfo is timezone.utc


def test_G2_period_start_rejects_negative_index() -> None:
    with pytest.raises(ValueError):
        period_start(utc(2027, 1, 1), Interval.MONTH, -1)


def test_G2_period_is_half_open() -> None:
    p = Period(utc(2027, 1, 31), utc(2027, 2, 28), 0)
    assert p.contains(utc(2027, 1, 31))
    assert p.contains(utc(2027, 2, 27, 23, 59, 59))
    assert not p.contains(utc(2027, 2, 28))
    assert not p.contains(utc(2027, 1, 30, 23, 59, 59))
    assert p.seconds == 28 * 86_400
    with pytest.raises(ValueError):
        Period(utc(2027, 1, 1), utc(2027, 1, 1), 0)
    with pytest.raises(ValueError):
        Period(utc(2027, 2, 1), utc(2027, 1, 1), 0)


def test_G2_period_at_examples() -> None:
    anchor = utc(2027, 1, 31, 12)
    assert period_at(anchor, Interval.MONTH, anchor) == Period(anchor, utc(2027, 2, 28, 12), 0)
    assert period_at(anchor, Interval.MONTH, utc(2027, 2, 28, 11, 59, 59)).index == 0
    assert period_at(anchor, Interval.MONTH, utc(2027, 3, 31, 11)) == Period(
        utc(2027, 2, 28, 12), utc(2027, 3, 31, 12), 1
    )
    assert period_at(anchor, "month", utc(2027, 3, 31, 12)).index == 2
    assert period_at(anchor, Interval.MONTH, utc(2527, 1, 31, 12)).index == 6000  # far future: O(1)
    with pytest.raises(ValueError):
        period_at(anchor, Interval.MONTH, utc(2027, 1, 31, 11))


def test_G2_periods_between_examples() -> None:
    anchor = utc(2027, 1, 31)
    got = list(periods_between(anchor, Interval.MONTH, utc(2027, 2, 10), utc(2027, 4, 30)))
    assert [(p.index, p.start, p.end) for p in got] == [
        (0, utc(2027, 1, 31), utc(2027, 2, 28)),
        (1, utc(2027, 2, 28), utc(2027, 3, 31)),
        (2, utc(2027, 3, 31), utc(2027, 4, 30)),
    ]
    assert list(periods_between(anchor, Interval.MONTH, utc(2027, 3, 1), utc(2027, 3, 1))) == []
    assert list(periods_between(anchor, Interval.MONTH, utc(2026, 1, 1), utc(2027, 1, 31))) == []
    assert [p.index for p in periods_between(anchor, Interval.MONTH, utc(2026, 1, 1), utc(2027, 2, 1))] == [0]
    with pytest.raises(ValueError):
        list(periods_between(anchor, Interval.MONTH, utc(2027, 3, 1), utc(2027, 2, 1)))


def test_G2_seconds_between_is_exact_and_truncates_microseconds() -> None:
    assert seconds_between(utc(2028, 2, 1), utc(2028, 3, 1)) == 29 * 86_400
    assert seconds_between(utc(2027, 1, 1), utc(2027, 1, 1)) == 0
    a = utc(2027, 1, 1)
    assert seconds_between(a, a + timedelta(seconds=5, microseconds=999_999)) == 5
    assert seconds_between(a + timedelta(microseconds=1), a + timedelta(seconds=5)) == 4
    with pytest.raises(ValueError):
        seconds_between(utc(2027, 1, 2), utc(2027, 1, 1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90m", timedelta(minutes=90)), ("4h", timedelta(hours=4)), ("36h", timedelta(hours=36)),
     ("30s", timedelta(seconds=30)), ("14d", timedelta(days=14)), ("1h30m", timedelta(hours=1, minutes=30)),
     ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)), ("0s", timedelta(0))],
)  # fmt: skip
def test_G2_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "h", "90", "1.5h", "-4h", "30m1h", "4 h", "1w", "4H", "1h1h", "abc", "100000000000000s", "40000d"]
)
def test_G2_parse_duration_rejects_bad_text_naming_it(text: str) -> None:
    with pytest.raises(ValueError, match=repr(text).replace(".", r"\.")):
        parse_duration(text)


# -- properties ---------------------------------------------------------------


@given(anchors, st.integers(0, 600))
def test_G2_add_months_matches_reference_and_never_drifts(anchor: datetime, months: int) -> None:
    got = add_months(anchor, months)
    assert got == reference_add_months(anchor, months)
    assert got.time() == anchor.time() and got.tzinfo is timezone.utc
    if anchor.day <= 28:
        assert got.day == anchor.day
    else:  # clamped only when the month is too short, and only from the anchor
        assert got.day == min(anchor.day, calendar.monthrange(got.year, got.month)[1])
    assert add_months(got, -months) <= anchor


@given(anchors, intervals, st.integers(0, 30 * 366 * 86_400), st.integers(0, 999_999))
def test_G2_period_at_agrees_with_iterative_reference_over_30_years(
    anchor: datetime, interval: Interval, offset_s: int, offset_us: int
) -> None:
    at = anchor + timedelta(seconds=offset_s, microseconds=offset_us)
    period = period_at(anchor, interval, at)
    assert (period.index, period.start, period.end) == reference_period_at(anchor, interval, at)
    assert period.contains(at)
    assert period.start == period_start(anchor, interval, period.index)


@given(anchors, intervals, st.integers(0, 30 * 366 * 86_400))
def test_G2_period_boundaries_belong_to_the_next_period(anchor: datetime, interval: Interval, offset_s: int) -> None:
    p = period_at(anchor, interval, anchor + timedelta(seconds=offset_s))
    nxt = period_at(anchor, interval, p.end)
    assert nxt.index == p.index + 1 and nxt.start == p.end
    if p.index > 0:
        assert period_at(anchor, interval, p.start - timedelta(microseconds=1)).index == p.index - 1


@given(anchors, intervals, st.integers(0, 10 * 366 * 86_400), st.integers(0, 5 * 366 * 86_400))
def test_G2_consecutive_periods_tile_time(anchor: datetime, interval: Interval, lead_s: int, span_s: int) -> None:
    start = anchor + timedelta(seconds=lead_s)
    end = start + timedelta(seconds=span_s)
    periods = list(periods_between(anchor, interval, start, end))
    if span_s == 0:
        assert periods == []
        return
    assert periods[0].contains(start)
    assert periods[-1].start < end <= periods[-1].end
    for a, b in zip(periods, periods[1:], strict=False):
        assert a.end == b.start  # no gap, no overlap
        assert b.index == a.index + 1
    assert sum(p.seconds for p in periods) == seconds_between(periods[0].start, periods[-1].end)
    for p in periods:
        days = p.seconds // 86_400
        assert p.seconds % 86_400 == 0
        assert (28 <= days <= 31) if interval is Interval.MONTH else (365 <= days <= 366)


@given(anchors, anchors)
def test_G2_seconds_between_is_additive(a: datetime, b: datetime) -> None:
    lo, hi = sorted((a, b))
    lo, hi = lo.replace(microsecond=0), hi.replace(microsecond=0)
    mid = lo + (hi - lo) / 2
    mid = mid.replace(microsecond=0)
    assert seconds_between(lo, hi) == seconds_between(lo, mid) + seconds_between(mid, hi)
    assert seconds_between(lo, hi) == int((hi - lo).total_seconds())


@given(st.integers(0, 400), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
def test_G2_parse_duration_round_trip(d: int, h: int, m: int, s: int) -> None:
    parts = [(d, "d"), (h, "h"), (m, "m"), (s, "s")]
    text = "".join(f"{v}{u}" for v, u in parts if v) or "0s"
    assert parse_duration(text) == timedelta(days=d, hours=h, minutes=m, seconds=s)
