"""A tenant's subscription: its states and what each state lets through.

The full state machine (trials, plan changes, cancellation, payment trouble)
is built on these types; see docs/lifecycle.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from farebox.catalog.domain import Plan
from farebox.kernel import reasons
from farebox.kernel.money import Money
from farebox.kernel.periods import Interval, Period


class Status(StrEnum):
    FREE = "free"  # a free plan, forever (S1, L5)
    TRIALING = "trialing"  # A3
    ACTIVE = "active"
    PAYMENT_ISSUE = "payment_issue"  # in grace (G9)
    CANCELLATION_SCHEDULED = "cancellation_scheduled"  # G8: works until period end
    CANCELED = "canceled"
    EXPIRED = "expired"  # G10
    UPCOMING = "upcoming"  # a scheduled plan change not started yet (G7)
    REPLACED = "replaced"  # ended by a plan change; its successor names it in `replaces_id`
    SCHEDULE_CANCELED = "schedule_canceled"  # an upcoming change called off before it started (G7, L9)


ENDED_STATUSES = frozenset({Status.CANCELED, Status.EXPIRED})
LIVE_STATUSES = frozenset(
    {Status.FREE, Status.TRIALING, Status.ACTIVE, Status.PAYMENT_ISSUE, Status.CANCELLATION_SCHEDULED}
)


@dataclass(frozen=True, slots=True)
class Subscription:
    tenant_id: str
    id: str
    plan: Plan
    plan_version_id: int
    catalog: str
    status: Status
    anchor_at: datetime
    period: Period
    starts_at: datetime
    trial_ends_at: datetime | None = None
    cancel_at_period_end: bool = False
    grace_ends_at: datetime | None = None
    ended_at: datetime | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    replaces_id: str | None = None  # the subscription this one follows after a plan change
    trial_usage: Mapping[str, int] = field(default_factory=dict)  # meter -> units used in the trial (A3)
    cancel_effective_at: datetime | None = None  # G8: when a scheduled cancellation takes effect
    overdue_invoice_id: str | None = None  # G9: the renewal invoice whose payment failed

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES


def trial_used_up(subscription: Subscription) -> bool:
    """A3: this subscription's trial ended because a usage bound was reached."""
    trial = subscription.plan.trial
    if subscription.status is not Status.EXPIRED or trial is None or subscription.trial_ends_at is None:
        return False
    return any(subscription.trial_usage.get(meter, 0) >= bound for meter, bound in trial.usage.items())


def admission_refusal(subscription: Subscription | None, now: datetime) -> reasons.Reason | None:
    """Why this subscription may not admit new usage at `now`, or None (G9, G10).

    Usage already admitted keeps going; this only gates *new* occurrences,
    attendees and sessions.
    """
    if subscription is None:
        return reasons.SUBSCRIPTION_EXPIRED
    if not subscription.is_live:
        return reasons.TRIAL_EXHAUSTED if trial_used_up(subscription) else reasons.SUBSCRIPTION_EXPIRED
    if subscription.grace_ends_at is not None and now >= subscription.grace_ends_at:
        return reasons.PAYMENT_OVERDUE
    if (
        subscription.status is Status.TRIALING
        and subscription.trial_ends_at is not None
        and now >= subscription.trial_ends_at
    ):
        return reasons.SUBSCRIPTION_EXPIRED
    return None


PAYING = frozenset({Status.ACTIVE, Status.PAYMENT_ISSUE, Status.CANCELLATION_SCHEDULED})


def monthly_recurring_revenue(subscription: Subscription | None) -> Money | None:
    """MRR of a live paid subscription: the monthly price, or the annual price / 12 rounded half-up once."""
    if subscription is None or subscription.status not in PAYING or subscription.plan.is_free:
        return None
    price = subscription.plan.price
    if subscription.plan.interval is Interval.YEAR:
        return Money((price.amount_minor * 2 + 12) // 24, price.currency)
    return price


def mrr_totals(subscriptions: list[Subscription | None]) -> dict[str, Money]:
    """MRR summed per currency (currencies never mix, G1)."""
    totals: dict[str, Money] = {}
    for mrr in map(monthly_recurring_revenue, subscriptions):
        if mrr is not None:
            totals[mrr.currency] = totals.get(mrr.currency, Money.zero(mrr.currency)) + mrr
    return dict(sorted(totals.items()))
