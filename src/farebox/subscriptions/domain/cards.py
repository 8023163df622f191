"""The subscription card and the upcoming card (G11), as a pure function of state and time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from farebox.subscriptions.domain.states import Status, Subscription

TRIAL = "Trial subscription"
TRIAL_ENDING_SOON = "Trial ending soon"
ACTIVE = "Active subscription"
PAYMENT_ISSUE = "Payment issue"
CANCELED = "Canceled subscription"
EXPIRED = "Expired subscription"
UPCOMING = "Upcoming subscription"

_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class SubscriptionCard:
    badge: str
    status: str
    catalog: str
    plan: str  # plan code
    plan_name: str
    price_minor: int
    currency: str
    price: str  # e.g. "150.00 EUR"
    interval: str
    next_billing_at: datetime | None  # paid and renewing
    expires_at: datetime | None  # canceled (scheduled or done), ended trial
    trial_ends_at: datetime | None = None
    trial_days_left: int | None = None
    trial_sessions_left: int | None = None  # units of the trial's usage bound (A3: sessions)
    trial_unit: str | None = None
    ending_soon: bool = False
    payment_pending: bool = False  # A7: the *Payment pending* banner
    grace_ends_at: datetime | None = None
    payment_overdue: bool = False  # G9: grace ran out


@dataclass(frozen=True, slots=True)
class UpcomingCard:
    badge: str
    catalog: str
    plan: str
    plan_name: str
    price_minor: int
    currency: str
    price: str
    interval: str
    starts_on: datetime


@dataclass(frozen=True, slots=True)
class Cards:
    subscription: SubscriptionCard | None
    upcoming: UpcomingCard | None


def trial_days_left(trial_ends_at: datetime, now: datetime) -> int:
    """Whole days left, counting a started day (13 days 2 hours left is 14)."""
    left = trial_ends_at - now
    if left <= timedelta(0):
        return 0
    return -(-left // _DAY)


def trial_usage_left(subscription: Subscription) -> tuple[str, int] | None:
    """(meter, units left) for the trial's first usage bound, if it has one."""
    trial = subscription.plan.trial
    if trial is None or not trial.usage:
        return None
    meter, bound = next(iter(trial.usage.items()))
    return meter, max(0, bound - subscription.trial_usage.get(meter, 0))


def trial_ending_soon(subscription: Subscription, now: datetime) -> bool:
    """G11: in the last `ending_soon_days` days, or once `ending_soon_usage_percent` of a usage bound is used."""
    trial = subscription.plan.trial
    if trial is None or subscription.trial_ends_at is None:
        return False
    if subscription.trial_ends_at - now <= timedelta(days=trial.ending_soon_days):
        return True
    return any(
        subscription.trial_usage.get(meter, 0) * 100 >= bound * trial.ending_soon_usage_percent
        for meter, bound in trial.usage.items()
    )


def _badge(subscription: Subscription, now: datetime) -> str:
    status = subscription.status
    if status is Status.TRIALING:
        return TRIAL_ENDING_SOON if trial_ending_soon(subscription, now) else TRIAL
    if status in (Status.ACTIVE, Status.FREE):
        return ACTIVE
    if status is Status.PAYMENT_ISSUE:
        return PAYMENT_ISSUE
    if status in (Status.CANCELLATION_SCHEDULED, Status.CANCELED):
        return CANCELED
    return EXPIRED


def subscription_card(subscription: Subscription, now: datetime) -> SubscriptionCard:
    s, plan = subscription, subscription.plan
    status = s.status
    renewing = status in (Status.ACTIVE, Status.PAYMENT_ISSUE) and not plan.is_free
    if status is Status.CANCELLATION_SCHEDULED:
        expires_at = s.cancel_effective_at
    elif status in (Status.CANCELED, Status.EXPIRED):
        expires_at = s.ended_at
    else:
        expires_at = None
    trial = status is Status.TRIALING or (
        status is Status.CANCELLATION_SCHEDULED
        and s.trial_ends_at is not None
        and s.cancel_effective_at == s.trial_ends_at
    )
    usage_left = trial_usage_left(s) if trial else None
    return SubscriptionCard(
        badge=_badge(s, now),
        status=status.value,
        catalog=s.catalog,
        plan=plan.code,
        plan_name=plan.name,
        price_minor=plan.price.amount_minor,
        currency=plan.price.currency,
        price=plan.price.format(),
        interval=plan.interval.value,
        next_billing_at=s.period.end if renewing else None,
        expires_at=expires_at,
        trial_ends_at=s.trial_ends_at if trial else None,
        trial_days_left=trial_days_left(s.trial_ends_at, now) if trial and s.trial_ends_at else None,
        trial_sessions_left=usage_left[1] if usage_left else None,
        trial_unit=usage_left[0] if usage_left else None,
        ending_soon=status is Status.TRIALING and trial_ending_soon(s, now),
        payment_pending=s.grace_ends_at is not None,
        grace_ends_at=s.grace_ends_at,
        payment_overdue=s.grace_ends_at is not None and now >= s.grace_ends_at,
    )


def upcoming_card(upcoming: Subscription) -> UpcomingCard:
    plan = upcoming.plan
    return UpcomingCard(
        badge=UPCOMING,
        catalog=upcoming.catalog,
        plan=plan.code,
        plan_name=plan.name,
        price_minor=plan.price.amount_minor,
        currency=plan.price.currency,
        price=plan.price.format(),
        interval=plan.interval.value,
        starts_on=upcoming.starts_at,
    )


def cards(current: Subscription | None, upcoming: Subscription | None, now: datetime) -> Cards:
    """G11: one badge on the subscription card; a scheduled change adds the upcoming card."""
    return Cards(
        subscription=subscription_card(current, now) if current is not None else None,
        upcoming=upcoming_card(upcoming) if upcoming is not None else None,
    )
