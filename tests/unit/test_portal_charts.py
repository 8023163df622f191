"""The Billing tab's server-rendered chart and gauge (pure functions)."""

from datetime import date

from farebox.entrypoints.portal import charts


def test_axis_top_is_1_2_5_times_a_power_of_ten():
    assert [charts.nice_top(v) for v in (0, 1, 2, 3, 7, 12, 20, 21, 499, 501)] == [
        1,
        1,
        2,
        5,
        10,
        20,
        20,
        50,
        500,
        1000,
    ]


def test_one_bar_per_day_with_zeros_and_at_most_31_days():
    bars = charts.days_to_show(date(2026, 1, 1), date(2026, 1, 3), {date(2026, 1, 2): 4})
    assert [(b.day.day, b.units) for b in bars] == [(1, 0), (2, 4), (3, 0)]
    assert len(charts.days_to_show(date(2026, 1, 1), date(2026, 12, 31), {})) == charts.MAX_DAYS


def test_chart_is_an_accessible_svg_with_a_bar_per_day():
    svg = charts.daily_chart(
        charts.days_to_show(date(2026, 1, 1), date(2026, 1, 5), {date(2026, 1, 2): 3}),
        unit="session",
        title="Sessions <per> day",
    )
    assert svg.startswith("<svg") and svg.count("<rect") == 5
    assert "Sessions &lt;per&gt; day" in svg and "3 session(s) over 5 day(s)" in svg


def test_L6_gauge_percent_bar_and_left():
    assert charts.gauge(25, 30) == {"percent": 83, "bar": 83, "left": 5}
    assert charts.gauge(40, 30) == {"percent": 133, "bar": 100, "left": 0}
    assert charts.gauge(5, None) == {"percent": None, "bar": 0, "left": None}
