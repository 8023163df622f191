"""Plan changes (G7, L4, L9, L11): when they start, which period follows, what they cost now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from farebox.catalog.domain import Plan
from farebox.kernel import reasons
from farebox.kernel.money import Money, prorate
from farebox.kernel.periods import period_at, seconds_between
from farebox.kernel.reasons import DomainError
from farebox.subscriptions.domain.states import Status, Subscription

IMMEDIATELY = "immediately"
END_OF_PERIOD = "end_of_period"
When = str | datetime | None


def monthly_minor(plan: Plan) -> int:
    """A plan's price per month in minor units, for ordering plans of different intervals."""
    return plan.price.amount_minor // plan.interval.months


def is_upgrade(current: Subscription, plan: Plan, catalog: str) -> bool:
    """Within a catalog a higher tier is an upgrade; across catalogs (L11) a
    higher monthly price is (a free plan to a paid one always is)."""
    if current.status is Status.TRIALING:
        return True  # converting a trial to paid (A3)
    if catalog == current.catalog:
        return plan.tier > current.plan.tier
    return monthly_minor(plan) > monthly_minor(current.plan)


@dataclass(frozen=True, slots=True)
class ChangeTiming:
    immediate: bool
    starts_at: datetime


def resolve_when(current: Subscription, *, upgrade: bool, when: When, now: datetime) -> ChangeTiming:
    """G7: `immediately`, `end_of_period` or a custom date; by default upgrades
    apply at once and downgrades at the end of the period (L9)."""
    if when is None:
        when = IMMEDIATELY if upgrade else END_OF_PERIOD
    if when == IMMEDIATELY:
        return ChangeTiming(True, now)
    if when == END_OF_PERIOD:
        return ChangeTiming(False, period_end(current))
    if isinstance(when, datetime):
        if when <= now:
            raise DomainError(reasons.CHANGE_DATE_IN_PAST, now=now.isoformat(), details={"field": "when"})
        return ChangeTiming(False, when)
    raise DomainError(
        reasons.VALIDATION_ERROR, detail="`when` is 'immediately', 'end_of_period' or a date", details={"field": "when"}
    )


def period_end(current: Subscription) -> datetime:
    """When the current stretch ends: the trial's end for a trial, else the period's."""
    if current.status is Status.TRIALING and current.trial_ends_at is not None:
        return current.trial_ends_at
    return current.period.end


def new_anchor(current: Subscription, plan: Plan, starts_at: datetime) -> datetime:
    """Keep the billing anchor when the interval stays and the old plan was paid
    (so an immediate upgrade is prorated over the same period, G7); otherwise
    the new plan's periods start when it does."""
    keeps = (
        plan.interval is current.plan.interval
        and not current.plan.is_free
        and current.status is not Status.TRIALING
        and starts_at >= current.anchor_at
    )
    return current.anchor_at if keeps else starts_at


@dataclass(frozen=True, slots=True)
class Proration:
    """What an immediate change costs for the rest of the period (G7 *Decision*)."""

    credit: Money  # unused part of the old fee
    charge: Money  # the new fee for the rest of its first period
    due_now: Money | None  # charge - credit, or None when the currencies differ (L11)


def proration(current: Subscription, plan: Plan, now: datetime, anchor: datetime) -> Proration:
    old = current.period
    if current.plan.is_free or current.status is Status.TRIALING or not old.contains(now):
        credit = Money.zero(current.plan.price.currency)
    else:
        credit = prorate(current.plan.price, seconds_between(now, old.end), old.seconds)
    new = period_at(anchor, plan.interval, now)
    charge = prorate(plan.price, seconds_between(now, new.end), new.seconds)
    due = charge - credit if charge.currency == credit.currency else None
    if due is not None and due.amount_minor < 0:
        due = Money.zero(due.currency)  # G8: no refunds; a downgrade's credit is not paid out
    return Proration(credit, charge, due)

