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

from farebox.domain import reasons
from farebox.domain.catalog import Plan
from farebox.domain.periods import Period


class Status(StrEnum):
    FREE = "free"  # a free plan, forever (S1, L5)
    TRIALING = "trialing"  # A3
    ACTIVE = "active"
    PAYMENT_ISSUE = "payment_issue"  # in grace (G9)
    CANCELLATION_SCHEDULED = "cancellation_scheduled"  # G8: works until period end
    CANCELED = "canceled"
    EXPIRED = "expired"  # G10
    UPCOMING = "upcoming"  # a scheduled plan change not started yet (G7)


LIVE_STATUSES = frozenset({Status.FREE, Status.TRIALING, Status.ACTIVE, Status.PAYMENT_ISSUE, Status.CANCELLATION_SCHEDULED})


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

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES


def admission_refusal(subscription: Subscription | None, now: datetime) -> reasons.Reason | None:
    """Why this subscription may not admit new usage at `now`, or None (G9, G10).

    Usage already admitted keeps going; this only gates *new* occurrences,
    attendees and sessions.
    """
    if subscription is None or not subscription.is_live:
        return reasons.SUBSCRIPTION_EXPIRED
    if subscription.status is Status.PAYMENT_ISSUE and subscription.grace_ends_at is not None and now >= subscription.grace_ends_at:
        return reasons.PAYMENT_OVERDUE
    if subscription.status is Status.TRIALING and subscription.trial_ends_at is not None and now >= subscription.trial_ends_at:
        return reasons.SUBSCRIPTION_EXPIRED
    return None
