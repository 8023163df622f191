"""The pure alert rules: edge-triggered thresholds (G12, L6, A3, A6), due times (A3, G9), wording (L8)."""

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from farebox.alerts.domain import messages as alert_messages
from farebox.alerts.domain.alerts import (
    AlertKind,
    crossed,
    days_left_due_times,
    grace_ending_due_at,
    threshold_units,
    trial_usage_alerts,
    usage_alerts,
)

T0 = datetime(2026, 3, 1, 10, tzinfo=timezone.utc)


def test_A3_trial_thresholds_of_50_sessions_are_30_and_45():
    assert [threshold_units(50, p) for p in (60, 90)] == [30, 45]
    assert crossed(29, 30, 50, (60, 90)) == [60]
    assert crossed(44, 45, 50, (60, 90)) == [90]
    assert crossed(30, 44, 50, (60, 90)) == []


def test_A6_thresholds_of_a_600_session_limit_are_480_and_600():
    assert [threshold_units(600, p) for p in (80, 100)] == [480, 600]
    assert crossed(479, 480, 600, (80, 100)) == [80]
    assert crossed(599, 600, 600, (80, 100)) == [100]
    assert crossed(600, 650, 600, (80, 100)) == []


def test_G12_no_limit_or_no_increase_raises_nothing():
    assert crossed(0, 10**6, None, (80, 100)) == []
    assert crossed(500, 500, 600, (80,)) == []
    assert crossed(600, 400, 600, (80,)) == []


@given(
    st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=40), st.integers(min_value=1, max_value=2000)
)
def test_G12_a_rising_total_crosses_each_threshold_exactly_once(steps, included):
    seen: list[int] = []
    total = 0
    for step in steps:
        seen += crossed(total, total + step, included, (60, 80, 90, 100))
        total += step
    assert sorted(seen) == seen
    assert seen == [p for p in (60, 80, 90, 100) if threshold_units(included, p) <= total]


def test_G12_keys_name_subscription_period_meter_limit_threshold():
    (alert,) = usage_alerts(
        subscription_id="sub_1", period_start=T0, meter="sessions", before=0, after=480, limit=600, percents=(80, 100)
    )
    assert alert.dedupe_key == f"usage_threshold:sub_1:{T0.isoformat()}:sessions:600:80"
    (trial,) = trial_usage_alerts(
        subscription_id="sub_1", meter="sessions", before=0, after=30, bound=50, percents=(60, 90)
    )
    assert trial.kind is AlertKind.TRIAL_USAGE and trial.dedupe_key == "trial_usage:sub_1:sessions:60"


def test_A3_days_left_due_times_in_order_and_skip_the_past():
    ends = T0 + timedelta(days=14)
    assert days_left_due_times(trial_ends_at=ends, days_left=(2, 7), now=T0) == [
        (7, ends - timedelta(days=7)),
        (2, ends - timedelta(days=2)),
    ]
    assert days_left_due_times(trial_ends_at=T0 + timedelta(days=5), days_left=(7, 2), now=T0) == [
        (2, T0 + timedelta(days=3))
    ]


def test_G9_grace_ending_reminder_two_days_before_unless_already_closer():
    assert grace_ending_due_at(grace_ends_at=T0 + timedelta(days=7), now=T0) == T0 + timedelta(days=5)
    assert grace_ending_due_at(grace_ends_at=T0 + timedelta(days=1), now=T0) is None


def test_every_alert_kind_has_wording():
    params = {
        "percent": 80,
        "used": 480,
        "limit": 600,
        "unit": "session",
        "bound": 50,
        "days": 7,
        "trial_ends_at": T0,
        "grace_ends_at": T0,
        "effective_at": T0,
        "starts_at": T0,
        "plan": "SME",
        "number": "1",
        "total": "150.00 EUR",
        "count": 501,
        "deadline": T0,
        "minutes_left": 10,
    }
    for kind in AlertKind:
        message = alert_messages.message(kind, params)
        assert message.title and message.body


def test_L8_mild_tone_is_calmer_than_standard():
    params = {"percent": 100, "used": 1200, "limit": 1200, "unit": "credit", "policy": "overage"}
    standard = alert_messages.message(AlertKind.USAGE_THRESHOLD, params)
    mild = alert_messages.message(AlertKind.USAGE_THRESHOLD, params, "mild")
    assert standard.severity == "warning" and mild.severity == "info"
    assert "limit" not in mild.title.lower()


def test_dates_are_written_in_utc():
    assert alert_messages.when(T0) == "1 March 2026, 10:00 UTC"
