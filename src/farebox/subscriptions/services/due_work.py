"""Due work of the lifecycle (G2): renewals, trial ends, scheduled changes,
cancellations, grace ends and the retention sweep.

The worker and test-clock advances run these handlers, each in the unit of
work that marks its item done, so each runs once.  A handler that finds its
item stale (the subscription moved on) does nothing and says why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from farebox.catalog.service import OfferedPlan
from farebox.events import due
from farebox.kernel.periods import period_at
from farebox.storage.uow import UnitOfWork
from farebox.subscriptions import db as repo
from farebox.subscriptions.domain import plan_changes
from farebox.subscriptions.domain.machine import Event
from farebox.subscriptions.domain.states import Status, Subscription
from farebox.subscriptions.services import lifecycle as core
from farebox.subscriptions.services.lifecycle import (
    CANCELLATION_EFFECTIVE,
    GRACE_END,
    PERIOD_END,
    RETENTION_PURGE,
    TRIAL_END,
    UPCOMING_START,
    emit,
    iso,
)

Item = dict[str, Any]


def _change_starts_by(uow: UnitOfWork, subscription: Subscription, at: datetime) -> bool:
    """Does a scheduled change replace this subscription at or before `at`?"""
    upcoming = repo.upcoming(uow.conn, subscription.tenant_id)
    return upcoming is not None and upcoming.replaces_id == subscription.id and upcoming.starts_at <= at


@due.handler(PERIOD_END)
def roll_period(uow: UnitOfWork, item: Item, now: datetime) -> str:
    """At a period's end a live subscription starts its next period (G2), unless
    a plan change or a cancellation takes over at that instant."""
    s = repo.get(uow.conn, item["tenant_id"], core.subscription_ref(item), for_update=True)
    if s is None or not s.is_live:
        return "nothing to do: subscription not live"
    if s.period.end != item["due_at"]:
        return "nothing to do: stale period end"
    if _change_starts_by(uow, s, item["due_at"]):
        return "nothing to do: a scheduled plan change starts now"
    if (
        s.status is Status.CANCELLATION_SCHEDULED
        and s.cancel_effective_at is not None
        and s.cancel_effective_at <= item["due_at"]
    ):
        return "nothing to do: the cancellation takes effect now"
    nxt = period_at(s.anchor_at, s.plan.interval, item["due_at"])
    values: dict[str, Any] = {"period_start_at": nxt.start, "period_end_at": nxt.end}
    if s.status is Status.TRIALING:
        repo.update_subscription(uow.conn, s.tenant_id, s.id, **values)  # no renewal is billed during a trial
    else:
        core.move(
            uow,
            s,
            Event.RENEW,
            now=now,
            cause=f"due: period end {iso(item['due_at'])}",
            details={"period_start": iso(nxt.start)},
            **values,
        )
        emit(
            uow,
            "subscription.renewed",
            s.tenant_id,
            now,
            "system",
            s.id,
            period_start=iso(nxt.start),
            period_end=iso(nxt.end),
        )
    due.schedule(uow, tenant_id=s.tenant_id, kind=PERIOD_END, ref=s.id, due_at=nxt.end, now=now)
    return f"renewed: period {nxt.start.isoformat()} - {nxt.end.isoformat()}"


@due.handler(TRIAL_END)
def end_trial_by_days(uow: UnitOfWork, item: Item, now: datetime) -> str:
    """A3: the trial's days ran out."""
    s = repo.get(uow.conn, item["tenant_id"], core.subscription_ref(item), for_update=True)
    if s is None or s.status is not Status.TRIALING or s.trial_ends_at != item["due_at"]:
        return "nothing to do: not trialing"
    if _change_starts_by(uow, s, item["due_at"]):
        return "nothing to do: the trial converts to the scheduled plan"
    after = core.end_trial(uow, s, now=now, cause_kind="days", cause=f"due: trial days ran out {iso(item['due_at'])}")
    return f"trial ended: {after.status.value}"


@due.handler(UPCOMING_START)
def start_upcoming(uow: UnitOfWork, item: Item, now: datetime) -> str:
    """G7: a scheduled change starts: the current subscription is replaced."""
    upcoming = repo.get(uow.conn, item["tenant_id"], core.subscription_ref(item), for_update=True)
    if upcoming is None or upcoming.status is not Status.UPCOMING:
        return "nothing to do: not upcoming"
    current = repo.current(uow.conn, upcoming.tenant_id, for_update=True)
    cause = f"due: scheduled change to {upcoming.catalog}/{upcoming.plan.code} starts"
    target = Status.FREE if upcoming.plan.is_free else Status.ACTIVE
    carried: dict[str, Any] = {}
    if current is not None and current.is_live:
        upgrade = plan_changes.is_upgrade(current, upcoming.plan, upcoming.catalog)
        old = core.move(uow, current, Event.REPLACE, now=now, cause=cause, ended_at=now)
        core.stop_due_work(uow, old, now=now)
        if current.grace_ends_at is not None:  # G9: a plan change does not wipe a failed payment
            target = Status.PAYMENT_ISSUE
            carried = {"grace_ends_at": current.grace_ends_at, "overdue_invoice_id": current.overdue_invoice_id}
    started = core.move(uow, upcoming, Event.START_SCHEDULED, now=now, cause=cause, target=target, **carried)
    if started.grace_ends_at is not None and started.grace_ends_at > now:
        core.arm(uow, GRACE_END, started, due_at=started.grace_ends_at, now=now)
    if current is not None and current.is_live:
        core.begin(uow, started, now=now, announce=False)
        core.announce_change(uow, current, started, now=now, upgrade=upgrade, immediate=False)
    else:
        core.begin(uow, started, now=now)
    return f"plan change started: {upcoming.plan.code}"


@due.handler(CANCELLATION_EFFECTIVE)
def cancellation_takes_effect(uow: UnitOfWork, item: Item, now: datetime) -> str:
    """G8, L10: the paid period is over: to the free plan (canceled) or expired; retention starts (G14)."""
    s = repo.get(uow.conn, item["tenant_id"], core.subscription_ref(item), for_update=True)
    if s is None or s.status is not Status.CANCELLATION_SCHEDULED or s.cancel_effective_at != item["due_at"]:
        return "nothing to do: no cancellation pending"
    fallback: OfferedPlan | None = core.fallback_plan(uow, s.catalog)
    target = Status.CANCELED if fallback is not None else Status.EXPIRED
    cause = f"due: cancellation takes effect {iso(item['due_at'])}"
    ended = core.move(uow, s, Event.CANCELLATION_EFFECTIVE, now=now, cause=cause, target=target, ended_at=now)
    core.stop_due_work(uow, ended, now=now)
    core.start_fallback(uow, ended, now=now, cause=f"{cause}: fall back to the free plan")
    retention_until = core.schedule_retention(uow, ended, now=now)
    emit(
        uow,
        "subscription.canceled",
        s.tenant_id,
        now,
        "system",
        s.id,
        to="free" if fallback else "expired",
        retention_until=iso(retention_until),
    )
    return f"canceled: {'free plan' if fallback else 'expired'}"


@due.handler(GRACE_END)
def grace_runs_out(uow: UnitOfWork, item: Item, now: datetime) -> str:
    """G9: grace ran out unpaid: new admissions are refused with payment_overdue."""
    s = repo.get(uow.conn, item["tenant_id"], core.subscription_ref(item), for_update=True)
    if s is None or s.grace_ends_at != item["due_at"] or not s.is_live:
        return "nothing to do: settled"
    core.move(uow, s, Event.GRACE_EXPIRED, now=now, cause=f"due: grace ended unpaid (invoice {s.overdue_invoice_id})")
    emit(uow, "subscription.grace_expired", s.tenant_id, now, "system", s.id)
    return "grace expired"


@due.handler(RETENTION_PURGE)
def retention_purge(uow: UnitOfWork, item: Item, now: datetime) -> str:
    """G14, L10: ask every area to delete the tenant's event data from before the cancellation."""
    before = item["payload"].get("before")
    emit(uow, "tenant.retention_purge", item["tenant_id"], now, "system", item["tenant_id"], before=before)
    return f"retention purge: event data before {before}"
