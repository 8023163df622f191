"""The steps every lifecycle use case shares: start a subscription, move one
through the state machine (recording the transition with its cause, G3),
end one for a plan change, and fall back when one ends (G8, A3).

All of these run inside the caller's unit of work and publish the
`subscription.*` signals of docs/architecture.md.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from farebox.catalog import db as catalog_repo
from farebox.catalog.service import OfferedPlan, offered_plan
from farebox.events import db as due_repo
from farebox.events import due
from farebox.events.signals import Signal, publish
from farebox.kernel.periods import period_at
from farebox.storage.ids import new_id
from farebox.storage.uow import UnitOfWork
from farebox.subscriptions import db as repo
from farebox.subscriptions.domain.machine import Event, step
from farebox.subscriptions.domain.states import Status, Subscription

PERIOD_END = "period_end"
TRIAL_END = "trial_end"
UPCOMING_START = "upcoming_start"
CANCELLATION_EFFECTIVE = "cancellation_effective"
GRACE_END = "grace_end"
RETENTION_PURGE = "retention_purge"


@dataclass(frozen=True, slots=True)
class CatalogRules:
    free_plan: str | None
    retention_days: int | None


def catalog_rules(uow: UnitOfWork, catalog: str) -> CatalogRules:
    row = catalog_repo.get_catalog(uow.conn, catalog)
    document = (row or {}).get("document") or {}
    return CatalogRules(document.get("free_plan"), document.get("retention_days"))


def emit(
    uow: UnitOfWork, kind: str, tenant_id: str, at: datetime, actor: str, subject: str | None, /, **data: Any
) -> None:
    publish(uow, Signal(kind=kind, tenant_id=tenant_id, at=at, actor=actor, subject=subject, data=data))


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def move(
    uow: UnitOfWork,
    subscription: Subscription,
    event: Event,
    *,
    now: datetime,
    cause: str,
    target: Status | None = None,
    details: dict[str, Any] | None = None,
    **values: Any,
) -> Subscription:
    """Apply one transition of the state machine to a stored subscription."""
    to = step(subscription.status, event, target)
    repo.update_subscription(uow.conn, subscription.tenant_id, subscription.id, status=to.value, **values)
    repo.record_transition(
        uow.conn, tenant_id=subscription.tenant_id, subscription_id=subscription.id, from_status=subscription.status,
        to_status=to, at=now, cause=cause, details={"event": event.value, **(details or {})},
    )
    updated = repo.get(uow.conn, subscription.tenant_id, subscription.id)
    assert updated is not None
    return updated


def start(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    offered: OfferedPlan,
    now: datetime,
    starts_at: datetime,
    anchor_at: datetime,
    event: Event,
    cause: str,
    replaces_id: str | None = None,
    target: Status | None = None,
    announce: bool = True,
    actor: str = "system",
) -> Subscription:
    """Write a new subscription row (live now, or upcoming) with its first transition; `actor`
    is who asked (an owner's key, the operator) and is what the audit log names."""
    plan = offered.plan
    status = step(None, event, target)
    period = period_at(anchor_at, plan.interval, starts_at)
    trial_ends_at = starts_at + timedelta(days=plan.trial.days) if status is Status.TRIALING and plan.trial else None
    sub_id = new_id("sub")
    repo.insert_subscription(
        uow.conn,
        tenant_id=tenant_id,
        id=sub_id,
        plan_version_id=offered.version_id,
        status=status.value,
        anchor_at=anchor_at,
        period_start_at=period.start,
        period_end_at=period.end,
        starts_at=starts_at,
        created_at=now,
        trial_ends_at=trial_ends_at,
        cancel_at_period_end=False,
        row_version=1,
        settings={},
        replaces_id=replaces_id,
        trial_usage={},
    )
    repo.record_transition(
        uow.conn,
        tenant_id=tenant_id,
        subscription_id=sub_id,
        from_status=None,
        to_status=status,
        at=now,
        cause=cause,
        details={
            "event": event.value,
            "catalog": offered.catalog,
            "plan": plan.code,
            "plan_version_id": offered.version_id,
        },
    )
    subscription = repo.get(uow.conn, tenant_id, sub_id)
    assert subscription is not None
    if status is not Status.UPCOMING:
        begin(uow, subscription, now=now, announce=announce, actor=actor)
    return subscription


def begin(
    uow: UnitOfWork, subscription: Subscription, *, now: datetime, actor: str = "system", announce: bool = True
) -> None:
    """Schedule a live subscription's due work and announce it (`subscription.started`;
    a plan change announces itself with `subscription.plan_changed` instead)."""
    s = subscription
    due.schedule(uow, tenant_id=s.tenant_id, kind=PERIOD_END, ref=s.id, due_at=s.period.end, now=now)
    if announce:
        emit(
            uow,
            "subscription.started",
            s.tenant_id,
            now,
            actor,
            s.id,
            plan_version_id=s.plan_version_id,
            status=s.status.value,
            period_start=iso(s.period.start),
            period_end=iso(s.period.end),
        )
    if s.status is Status.TRIALING and s.trial_ends_at is not None:
        due.schedule(uow, tenant_id=s.tenant_id, kind=TRIAL_END, ref=s.id, due_at=s.trial_ends_at, now=now)
        emit(
            uow, "subscription.trial_started", s.tenant_id, now, actor, s.id,
            trial_ends_at=iso(s.trial_ends_at), usage=dict(s.plan.trial.usage) if s.plan.trial else {},
        )


def arm(uow: UnitOfWork, kind: str, subscription: Subscription, *, due_at: datetime, now: datetime) -> None:
    """Schedule due work that can be called off and armed again for the same
    instant (a cancellation undone and redone; a grace settled and reopened):
    each arming gets its own ref `<subscription id>:<nonce>`."""
    due.schedule(
        uow,
        tenant_id=subscription.tenant_id,
        kind=kind,
        ref=f"{subscription.id}:{secrets.token_hex(4)}",
        due_at=due_at,
        now=now,
    )


def subscription_ref(item: dict[str, Any]) -> str:
    return str(item["ref"]).split(":", 1)[0]


def disarm(uow: UnitOfWork, subscription: Subscription, *, now: datetime, kinds: tuple[str, ...] | None = None) -> None:
    """Call off the pending due work of a subscription (of these kinds, or all)."""
    for item in due_repo.pending(uow.conn, subscription.tenant_id):
        if subscription_ref(item) == subscription.id and (kinds is None or item["kind"] in kinds):
            due.cancel(uow, tenant_id=subscription.tenant_id, kind=item["kind"], ref=item["ref"], now=now)


def stop_due_work(uow: UnitOfWork, subscription: Subscription, *, now: datetime) -> None:
    """The subscription ended: none of its due work is to run (retention is the tenant's, and stays)."""
    disarm(uow, subscription, now=now, kinds=(PERIOD_END, TRIAL_END, CANCELLATION_EFFECTIVE, GRACE_END, UPCOMING_START))


def fallback_plan(uow: UnitOfWork, catalog: str) -> OfferedPlan | None:
    rules = catalog_rules(uow, catalog)
    return offered_plan(uow.conn, catalog, rules.free_plan) if rules.free_plan else None


def start_fallback(uow: UnitOfWork, ended: Subscription, *, now: datetime, cause: str) -> Subscription | None:
    """G8, L10: after a subscription ends the tenant drops to its catalog's free plan, if any."""
    offered = fallback_plan(uow, ended.catalog)
    if offered is None:
        return None
    return start(
        uow,
        tenant_id=ended.tenant_id,
        offered=offered,
        now=now,
        starts_at=now,
        anchor_at=now,
        event=Event.SUBSCRIBE_FREE,
        cause=cause,
    )


def schedule_retention(uow: UnitOfWork, ended: Subscription, *, now: datetime) -> datetime | None:
    """G14: event data is deleted `retention_days` after the cancellation takes effect."""
    days = catalog_rules(uow, ended.catalog).retention_days
    if days is None:
        return None
    until = now + timedelta(days=days)
    due.schedule(
        uow,
        tenant_id=ended.tenant_id,
        kind=RETENTION_PURGE,
        ref=ended.id,
        due_at=until,
        now=now,
        payload={"before": iso(now)},
    )
    return until


def end_trial(
    uow: UnitOfWork, subscription: Subscription, *, now: datetime, cause_kind: str, cause: str
) -> Subscription:
    """A3: the trial ran out of days or usage: expired, then the free plan if the catalog has one."""
    ended = move(uow, subscription, Event.TRIAL_END, now=now, cause=cause, ended_at=now, details={"cause": cause_kind})
    stop_due_work(uow, ended, now=now)
    fallback = start_fallback(uow, ended, now=now, cause=f"{cause}: fall back to the free plan")
    emit(
        uow, "subscription.trial_ended", ended.tenant_id, now, "system", ended.id,
        cause=cause_kind, to_status=(fallback.status.value if fallback else Status.EXPIRED.value),
    )
    return fallback or ended


def announce_change(
    uow: UnitOfWork, old: Subscription, new: Subscription, *, now: datetime, upgrade: bool, immediate: bool,
    actor: str = "system",
) -> None:
    if old.status is Status.TRIALING:
        emit(
            uow, "subscription.trial_ended", old.tenant_id, now, actor, old.id,
            cause="converted", to_status=new.status.value,
        )
    emit(
        uow, "subscription.plan_changed", new.tenant_id, now, actor, new.id,
        from_subscription_id=old.id, from_plan_version_id=old.plan_version_id, to_plan_version_id=new.plan_version_id,
        upgrade=upgrade, immediate=immediate,
        old_period_start=iso(old.period.start), old_period_end=iso(old.period.end),
        new_period_start=iso(new.period.start), new_period_end=iso(new.period.end),
    )
