"""Late usage: which subscription and period an ingested event belongs to (A1, G3).

An event is counted in the period that contains its `time`, under the
subscription that was live then, as that subscription was then (its period,
and a live status if it has ended since).  It is refused, with its own reason,
when it is dated in the future beyond a small clock skew, before the tenant's
first subscription, or in a period whose invoice has been issued (the period
is closed: what it billed cannot change any more).  Pure: the caller passes
the tenant's subscriptions and, per subscription, when its last invoice was
issued.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from farebox.kernel import reasons
from farebox.kernel.periods import Period, period_at
from farebox.subscriptions.domain.states import Status, Subscription

FUTURE_SKEW = timedelta(minutes=5)  # clocks of senders may run this far ahead; such an event counts at `now`
NOT_IN_FORCE = frozenset({Status.UPCOMING, Status.SCHEDULE_CANCELED})


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an event is counted: at `at`, under `subscription` (with the period containing `at`)."""

    at: datetime
    subscription: Subscription | None


@dataclass(frozen=True, slots=True)
class Refused:
    reason: reasons.Reason
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        return self.reason.message(**self.params)


def decision_time(time: datetime | None, now: datetime) -> datetime | Refused:
    """The instant the rules are applied at: the event's time, `now` without one or within the skew."""
    if time is None:
        return now
    if time > now + FUTURE_SKEW:
        return Refused(reasons.EVENT_IN_FUTURE, {"time": _stamp(time), "skew": _minutes(FUTURE_SKEW)})
    return min(time, now)


def in_current_period(at: datetime, current: Subscription | None) -> bool:
    """The common case, decided without the tenant's history: a live subscription's current period."""
    return (
        current is not None
        and current.is_live
        and current.ended_at is None
        and at >= current.period.start
        and at >= current.starts_at
    )


def place(
    at: datetime, subscriptions: Sequence[Subscription], invoiced_until: Mapping[str, datetime]
) -> Placement | Refused:
    """The subscription (as it was at `at`) whose period counts an event at `at`; or why none may."""
    in_force = [s for s in subscriptions if s.status not in NOT_IN_FORCE]
    if not in_force or at < min(s.starts_at for s in in_force):
        first = min((s.starts_at for s in in_force), default=None)
        return Refused(
            reasons.EVENT_BEFORE_SUBSCRIPTION, {"time": _stamp(at), "start": _stamp(first) if first else "never"}
        )
    covering = [s for s in in_force if s.starts_at <= at and (s.ended_at is None or at < s.ended_at)]
    if not covering:
        # Between an ended subscription and the next one: the one that had ended refuses by the usual rules (G10).
        ended = max(
            (s for s in in_force if s.ended_at is not None and s.ended_at <= at), key=lambda s: s.ended_at or at
        )
        return Placement(at, ended)
    sub = max(covering, key=lambda s: s.starts_at)
    period = sub.period if at >= sub.period.start else _period_of(sub, at)
    closes_at = min(period.end, sub.ended_at) if sub.ended_at is not None else period.end
    issued = invoiced_until.get(sub.id)
    if issued is not None and issued >= closes_at:
        return Refused(reasons.EVENT_PERIOD_INVOICED, {"time": _stamp(at), "issued": _stamp(issued)})
    return Placement(at, _as_at(sub, period, at))


def _period_of(sub: Subscription, at: datetime) -> Period:
    return period_at(sub.anchor_at, sub.plan.interval, max(at, sub.anchor_at))


def _as_at(sub: Subscription, period: Period, at: datetime) -> Subscription:
    """The subscription as it stood at `at`: that period, and live if it has ended since."""
    changes: dict[str, Any] = {}
    if period != sub.period:
        changes["period"] = period
    if not sub.is_live and sub.ended_at is not None and at < sub.ended_at:
        trialing = sub.trial_ends_at is not None and at < sub.trial_ends_at
        changes["status"] = Status.TRIALING if trialing else Status.ACTIVE
    return replace(sub, **changes) if changes else sub


def _stamp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _minutes(delta: timedelta) -> str:
    return f"{int(delta.total_seconds() // 60)} minutes"
