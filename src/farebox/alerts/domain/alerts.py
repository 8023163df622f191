"""Alerts (G12): which alert a change raises, and the key that makes it fire once.

Pure rules, no I/O.  Usage alerts are *edge-triggered*: a threshold fires when
a period total crosses it (`before < threshold <= after`), never on a read, so
the same total seen twice raises nothing.  Every alert carries a `dedupe_key`
built from (subscription, period, meter, threshold) or from the due time; the
outbox stores it under a unique key, so an alert fires exactly once even when
a signal is replayed or a test clock jumps past several due times at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class AlertKind(StrEnum):
    CAP_EXCEEDED = "cap_exceeded"  # S5
    OCCURRENCE_ENDING_SOON = "occurrence_ending_soon"  # S6
    USAGE_THRESHOLD = "usage_threshold"  # L6, L8 (credits and other period pools)
    SESSION_LIMIT = "session_limit"  # A6 (a limit the tenant may set)
    TRIAL_USAGE = "trial_usage"  # A3: 60% and 90% of trial sessions
    TRIAL_DAYS_LEFT = "trial_days_left"  # A3: 7 and 2 days left
    TRIAL_ENDED = "trial_ended"  # A3
    PAYMENT_FAILED = "payment_failed"  # G9
    GRACE_ENDING = "grace_ending"  # G9
    GRACE_EXPIRED = "grace_expired"  # G9
    PAYMENT_SETTLED = "payment_settled"  # G9
    CANCELLATION_SCHEDULED = "cancellation_scheduled"  # G8
    CANCELLATION_REVOKED = "cancellation_revoked"  # G8 (reactivated)
    CANCELED = "canceled"  # G8
    PLAN_CHANGE_SCHEDULED = "plan_change_scheduled"  # G7
    PLAN_CHANGE_CANCELED = "plan_change_canceled"  # G7
    PLAN_CHANGED = "plan_changed"  # G7
    INVOICE_ISSUED = "invoice_issued"  # G13


# Decision: the G9 "grace ending" reminder goes out this long before grace ends.
GRACE_ENDING_NOTICE = timedelta(days=2)


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert to raise: what, about which subscription or thing, and its once-only key."""

    kind: AlertKind
    dedupe_key: str
    params: Mapping[str, Any] = field(default_factory=dict)
    subscription_id: str | None = None
    subject: str | None = None


def threshold_units(included: int, percent: int) -> int:
    """The usage at which `percent` of `included` is reached (rounded up: 60% of 50 is 30)."""
    return -(-included * percent // 100)


def crossed(before: int, after: int, included: int | None, percents: Iterable[int]) -> list[int]:
    """The thresholds (percent of `included`) that usage crossed going from `before` to `after`."""
    if included is None or included <= 0 or after <= before:
        return []
    return [p for p in percents if before < threshold_units(included, p) <= after]


def _iso(value: datetime | str) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def usage_alerts(
    *,
    subscription_id: str,
    period_start: datetime | str,
    meter: str,
    before: int,
    after: int,
    limit: int | None,
    percents: Iterable[int],
    kind: AlertKind = AlertKind.USAGE_THRESHOLD,
    params: Mapping[str, Any] | None = None,
) -> list[Alert]:
    """L6/A6: one alert per threshold crossed, once per (subscription, period, meter, limit, threshold).

    The limit is part of the key so that changing a customer limit re-arms its
    alerts (A6: 80% of a raised limit is a new threshold)."""
    alerts = []
    for percent in crossed(before, after, limit, percents):
        key = f"{kind.value}:{subscription_id}:{_iso(period_start)}:{meter}:{limit}:{percent}"
        alerts.append(
            Alert(
                kind,
                key,
                {**(params or {}), "percent": percent, "used": after, "limit": limit, "meter": meter},
                subscription_id,
            )
        )
    return alerts


def trial_usage_alerts(
    *, subscription_id: str, meter: str, before: int, after: int, bound: int, percents: Iterable[int]
) -> list[Alert]:
    """A3: the trial's usage reminders (60% and 90% of 50 sessions: at 30 and at 45)."""
    return [
        Alert(
            AlertKind.TRIAL_USAGE,
            f"trial_usage:{subscription_id}:{meter}:{p}",
            {"percent": p, "used": after, "bound": bound, "meter": meter},
            subscription_id,
        )
        for p in crossed(before, after, bound, percents)
    ]


def days_left_due_times(
    *, trial_ends_at: datetime, days_left: Iterable[int], now: datetime
) -> list[tuple[int, datetime]]:
    """A3: when each "N days left" reminder falls due; ones already past at the trial's start are skipped."""
    due = [(days, trial_ends_at - timedelta(days=days)) for days in days_left if days > 0]
    return sorted(((d, at) for d, at in due if at >= now), key=lambda pair: pair[1])


def grace_ending_due_at(*, grace_ends_at: datetime, now: datetime) -> datetime | None:
    """G9: when the "grace ends soon" reminder falls due (None if grace is already that short)."""
    at = grace_ends_at - GRACE_ENDING_NOTICE
    return at if at > now else None
