"""The subscription lifecycle's use cases: subscribe (with a trial),
change plan (now, at period end, on a date; across catalogs), cancel a
scheduled change, cancel, reactivate, the G11 cards, sales requests.

The portal, the API, the CLI and the scenario runner call these.  Due work
(renewals, trial ends, scheduled changes, cancellations, grace, retention) is
in `subscriptions/services/due_work.py`; listeners to other areas' signals in
`subscriptions/services/listeners.py`.  See docs/lifecycle.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from farebox.bootstrap import Farebox
from farebox.catalog import service as catalog_service
from farebox.catalog.domain import Plan, Sales
from farebox.catalog.service import OfferedPlan
from farebox.clocks.service import now_for
from farebox.events import due
from farebox.kernel import reasons
from farebox.kernel.access import Principal, require_billing_access
from farebox.kernel.clock import ensure_utc
from farebox.kernel.reasons import DomainError
from farebox.payments import service as payments
from farebox.storage.ids import new_id
from farebox.storage.uow import UnitOfWork
from farebox.subscriptions import db as repo
from farebox.subscriptions.domain import cards as cards_domain
from farebox.subscriptions.domain import plan_changes
from farebox.subscriptions.domain.machine import Event, describe
from farebox.subscriptions.domain.states import Status, Subscription
from farebox.subscriptions.services import lifecycle as core  # noqa: F401  (registers due handlers and listeners)
from farebox.subscriptions.services.lifecycle import CANCELLATION_EFFECTIVE, PERIOD_END, UPCOMING_START, emit, iso  # noqa: F401
from farebox.tenants.db import tenants as tenants_repo

REQUEST_RECEIVED = "Request received"  # A5


@dataclass(frozen=True, slots=True)
class PlanChange:
    """What `change_plan` did: the subscription of record now, and the scheduled one if any."""

    subscription: Subscription
    upcoming: Subscription | None
    immediate: bool
    upgrade: bool


@dataclass(frozen=True, slots=True)
class LimitView:
    meter: str
    included: int | None
    policy: str


@dataclass(frozen=True, slots=True)
class ChangePreview:
    """L11: what moving to a plan (maybe of another catalog) would change."""

    from_catalog: str
    from_plan: str
    from_plan_name: str
    from_price: str
    from_interval: str
    to_catalog: str
    to_plan: str
    to_plan_name: str
    to_price: str
    to_interval: str
    upgrade: bool
    default_when: str
    currency: str
    currency_changes: bool
    credit_minor: int  # unused part of the current fee, were the change immediate
    charge_minor: int  # the new fee for the rest of its first period
    due_now_minor: int | None  # charge - credit (None when currencies differ)
    limits_before: list[LimitView] = field(default_factory=list)
    limits_after: list[LimitView] = field(default_factory=list)
    features_added: list[str] = field(default_factory=list)
    features_removed: list[str] = field(default_factory=list)
    requires_sales: bool = False


@dataclass(frozen=True, slots=True)
class SalesRequest:
    id: str
    tenant_id: str
    catalog: str
    plan: str
    kind: str  # contact_sales (S1) or book_a_demo (A5)
    requested_at: datetime
    message: str = REQUEST_RECEIVED


@dataclass(frozen=True, slots=True)
class Transition:
    subscription_id: str
    from_status: str | None
    to_status: str
    at: datetime
    cause: str
    details: dict[str, Any]


def _cause(actor: Principal, cause: str, what: str) -> str:
    return f"{cause}: {what} by {actor.label()}"


def _offered(uow: UnitOfWork, actor: Principal, catalog: str, plan: str) -> OfferedPlan:
    offered = catalog_service.offered_plan(uow.conn, catalog, plan)
    if offered.plan.sales is not Sales.SELF_SERVE and not actor.is_operator:
        raise DomainError(reasons.SALES_ASSISTED_PLAN, plan=plan, details={"sales": offered.plan.sales.value})
    return offered


def subscribe(
    fb: Farebox, actor: Principal, tenant_id: str, *, catalog: str, plan: str, trial: bool = False, cause: str = "api"
) -> Subscription:
    """Start a plan now: free plans are `free`, paid plans `active` (billed in
    advance), or `trialing` with `trial=True` (A3, once per tenant, A4)."""
    require_billing_access(actor, tenant_id)
    with fb.uow() as uow:
        now = now_for(uow, fb.clock, tenant_id)
        offered = _offered(uow, actor, catalog, plan)
        current = repo.current(uow.conn, tenant_id, for_update=True)
        if current is not None and current.is_live:
            raise DomainError(
                reasons.CONFLICT, detail="The tenant already has a live subscription; change its plan instead."
            )
        subscription = _subscribe(
            uow, tenant_id, offered, trial=trial, now=now, cause=_cause(actor, cause, f"subscribe {catalog}/{plan}"),
            actor=actor.label(),
        )
        uow.commit()
    return subscription


def _subscribe(
    uow: UnitOfWork, tenant_id: str, offered: OfferedPlan, *, trial: bool, now: datetime, cause: str,
    actor: str = "system",
) -> Subscription:
    if not trial:
        payments.require_means_of_payment(uow, tenant_id, offered.plan)
    if trial:
        if offered.plan.trial is None:
            raise DomainError(reasons.TRIAL_NOT_OFFERED, plan=offered.plan.code)
        if repo.has_had_trial(uow.conn, tenant_id):
            raise DomainError(reasons.TRIAL_ALREADY_USED)
        event = Event.START_TRIAL
    else:
        event = Event.SUBSCRIBE_FREE if offered.plan.is_free else Event.SUBSCRIBE_PAID
    stale = repo.upcoming(uow.conn, tenant_id, for_update=True)
    if stale is not None:
        _drop_upcoming(uow, stale, now=now, cause=cause, actor=actor)
    return core.start(
        uow, tenant_id=tenant_id, offered=offered, now=now, starts_at=now, anchor_at=now, event=event, cause=cause,
        actor=actor,
    )


def change_plan(
    fb: Farebox,
    actor: Principal,
    tenant_id: str,
    *,
    plan: str,
    catalog: str | None = None,
    when: str | datetime | None = None,
    cause: str = "api",
) -> PlanChange:
    """G7: change now, at the end of the period or on a date (`when`); by default
    upgrades apply at once and downgrades at period end (L9).  A scheduled
    change is an *upcoming* subscription; a second schedule replaces the first.
    `catalog` moves the tenant to another catalog's plan (L11)."""
    require_billing_access(actor, tenant_id)
    if isinstance(when, datetime):
        try:
            when = ensure_utc(when)
        except ValueError:
            raise DomainError(
                reasons.VALIDATION_ERROR, detail="`when` needs a time zone", details={"field": "when"}
            ) from None
    with fb.uow() as uow:
        now = now_for(uow, fb.clock, tenant_id)
        current = repo.current(uow.conn, tenant_id, for_update=True)
        if catalog is None and current is None:
            raise DomainError(
                reasons.VALIDATION_ERROR,
                detail="name the catalog: the tenant has no subscription",
                details={"field": "catalog"},
            )
        offered = _offered(uow, actor, catalog or current.catalog, plan)  # type: ignore[union-attr]
        why = _cause(actor, cause, f"change to {offered.catalog}/{plan}")
        if current is None or not current.is_live:
            new = _subscribe(uow, tenant_id, offered, trial=False, now=now, cause=why, actor=actor.label())
            uow.commit()
            return PlanChange(new, None, True, True)
        if current.status is Status.CANCELLATION_SCHEDULED:
            raise DomainError(
                reasons.INVALID_TRANSITION, status=describe(Status.CANCELLATION_SCHEDULED),
                action="change plan (reactivate it first)",
            )
        same = offered.catalog == current.catalog and offered.plan.code == current.plan.code
        if same and current.status is not Status.TRIALING:
            raise DomainError(reasons.SAME_PLAN, plan=plan)
        payments.require_means_of_payment(uow, tenant_id, offered.plan)
        upgrade = plan_changes.is_upgrade(current, offered.plan, offered.catalog)
        timing = plan_changes.resolve_when(current, upgrade=upgrade, when=when, now=now)
        previous = repo.upcoming(uow.conn, tenant_id, for_update=True)
        if previous is not None:
            _drop_upcoming(uow, previous, now=now, cause=f"{why}: replaces the scheduled change", actor=actor.label())
        if timing.immediate and current.status is Status.PAYMENT_ISSUE:
            raise DomainError(
                reasons.INVALID_TRANSITION, status=describe(Status.PAYMENT_ISSUE),
                action="change plan now (settle the failed payment first, or schedule the change)",
            )
        if timing.immediate:
            new = _replace(
                uow, current, offered, now=now, upgrade=upgrade, immediate=True, cause=why, actor=actor.label()
            )
            result = PlanChange(new, None, True, upgrade)
        else:
            starts_at = timing.starts_at
            upcoming = _schedule(uow, current, offered, starts_at=starts_at, now=now, cause=why, actor=actor.label())
            result = PlanChange(current, upcoming, False, upgrade)
        uow.commit()
    return result


def _schedule(
    uow: UnitOfWork, current: Subscription, offered: OfferedPlan, *, starts_at: datetime, now: datetime, cause: str,
    actor: str = "system",
) -> Subscription:
    keeps_anchor = (
        starts_at == current.period.end
        and offered.plan.interval is current.plan.interval
        and current.status is not Status.TRIALING
    )
    upcoming = core.start(
        uow,
        tenant_id=current.tenant_id,
        offered=offered,
        now=now,
        starts_at=starts_at,
        anchor_at=current.anchor_at if keeps_anchor else starts_at,
        event=Event.SCHEDULE,
        cause=cause,
        replaces_id=current.id,
    )
    due.schedule(uow, tenant_id=current.tenant_id, kind=UPCOMING_START, ref=upcoming.id, due_at=starts_at, now=now)
    emit(
        uow, "subscription.plan_change_scheduled", current.tenant_id, now, actor, upcoming.id,
        current_subscription_id=current.id, to_plan_version_id=offered.version_id, starts_at=iso(starts_at),
    )
    return upcoming


def _replace(
    uow: UnitOfWork, current: Subscription, offered: OfferedPlan, *, now: datetime, upgrade: bool, immediate: bool,
    cause: str,
    actor: str = "system",
) -> Subscription:
    """End `current` and start `offered` now (an immediate change, or a scheduled one starting)."""
    anchor = plan_changes.new_anchor(current, offered.plan, now)
    old = core.move(uow, current, Event.REPLACE, now=now, cause=cause, ended_at=now)
    core.stop_due_work(uow, old, now=now)
    event = Event.SUBSCRIBE_FREE if offered.plan.is_free else Event.SUBSCRIBE_PAID
    new = core.start(
        uow, tenant_id=current.tenant_id, offered=offered, now=now, starts_at=now, anchor_at=anchor, event=event,
        cause=cause, replaces_id=current.id, announce=False,
    )
    core.announce_change(uow, current, new, now=now, upgrade=upgrade, immediate=immediate, actor=actor)
    return new


def _drop_upcoming(
    uow: UnitOfWork, upcoming: Subscription, *, now: datetime, cause: str, actor: str = "system"
) -> Subscription:
    dropped = core.move(uow, upcoming, Event.CANCEL_SCHEDULED, now=now, cause=cause, ended_at=now)
    core.stop_due_work(uow, dropped, now=now)
    emit(
        uow, "subscription.plan_change_canceled", upcoming.tenant_id, now, actor, upcoming.id,
        starts_at=iso(upcoming.starts_at),
    )
    return dropped


def preview_change(fb: Farebox, actor: Principal, tenant_id: str, *, catalog: str, plan: str) -> ChangePreview:
    """L11: what moving to `catalog`/`plan` would change and cost, without changing anything."""
    require_billing_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        now = now_for(uow, fb.clock, tenant_id)
        current = repo.current(uow.conn, tenant_id)
        offered = catalog_service.offered_plan(uow.conn, catalog, plan)
    if current is None:
        raise DomainError(reasons.NO_SUBSCRIPTION)
    to = offered.plan
    upgrade = plan_changes.is_upgrade(current, to, catalog)
    anchor = plan_changes.new_anchor(current, to, now)
    money = plan_changes.proration(current, to, now, anchor)
    return ChangePreview(
        from_catalog=current.catalog,
        from_plan=current.plan.code,
        from_plan_name=current.plan.name,
        from_price=current.plan.price.format(),
        from_interval=current.plan.interval.value,
        to_catalog=catalog,
        to_plan=to.code,
        to_plan_name=to.name,
        to_price=to.price.format(),
        to_interval=to.interval.value,
        upgrade=upgrade,
        default_when=plan_changes.IMMEDIATELY if upgrade else plan_changes.END_OF_PERIOD,
        currency=to.price.currency,
        currency_changes=to.price.currency != current.plan.price.currency,
        credit_minor=money.credit.amount_minor,
        charge_minor=money.charge.amount_minor,
        due_now_minor=money.due_now.amount_minor if money.due_now is not None else None,
        limits_before=_limits(current.plan),
        limits_after=_limits(to),
        features_added=sorted(to.features - current.plan.features),
        features_removed=sorted(current.plan.features - to.features),
        requires_sales=to.sales is not Sales.SELF_SERVE,
    )


def _limits(plan: Plan) -> list[LimitView]:
    return [LimitView(limit.meter, limit.included, limit.policy.value) for limit in plan.limits]


def cancel_scheduled_change(fb: Farebox, actor: Principal, tenant_id: str, *, cause: str = "api") -> Subscription:
    """G7, L9: call off the upcoming plan change before it starts."""
    require_billing_access(actor, tenant_id)
    with fb.uow() as uow:
        now = now_for(uow, fb.clock, tenant_id)
        upcoming = repo.upcoming(uow.conn, tenant_id, for_update=True)
        if upcoming is None:
            raise DomainError(reasons.NO_SCHEDULED_CHANGE)
        why = _cause(actor, cause, "cancel the scheduled change")
        dropped = _drop_upcoming(uow, upcoming, now=now, cause=why, actor=actor.label())
        uow.commit()
    return dropped


def cancel(fb: Farebox, actor: Principal, tenant_id: str, *, cause: str = "api") -> Subscription:
    """G8, S7, L10: cancel at the end of the paid period (a trial: at its end);
    everything works until then.  A scheduled plan change is called off."""
    require_billing_access(actor, tenant_id)
    with fb.uow() as uow:
        now = now_for(uow, fb.clock, tenant_id)
        current = _live(uow, tenant_id)
        why = _cause(actor, cause, "cancel")
        if current.status is Status.FREE:
            raise DomainError(
                reasons.INVALID_TRANSITION, status=describe(Status.FREE),
                action="be cancelled (a free plan has nothing to cancel)",
            )
        effective_at = plan_changes.period_end(current)
        upcoming = repo.upcoming(uow.conn, tenant_id, for_update=True)
        if upcoming is not None:
            calls_off = f"{why}: a cancellation calls off the scheduled change"
            _drop_upcoming(uow, upcoming, now=now, cause=calls_off, actor=actor.label())
        canceled = core.move(
            uow, current, Event.CANCEL, now=now, cause=why, cancel_at_period_end=True, cancel_effective_at=effective_at
        )
        core.arm(uow, CANCELLATION_EFFECTIVE, current, due_at=effective_at, now=now)
        emit(
            uow,
            "subscription.cancellation_scheduled",
            tenant_id,
            now,
            actor.label(),
            current.id,
            effective_at=iso(effective_at),
        )
        uow.commit()
    return canceled


def reactivate(fb: Farebox, actor: Principal, tenant_id: str, *, cause: str = "api") -> Subscription:
    """G8: undo a cancellation before it takes effect."""
    require_billing_access(actor, tenant_id)
    with fb.uow() as uow:
        now = now_for(uow, fb.clock, tenant_id)
        current = _live(uow, tenant_id)
        if current.grace_ends_at is not None:
            target = Status.PAYMENT_ISSUE
        elif current.trial_ends_at is not None and current.cancel_effective_at == current.trial_ends_at:
            target = Status.TRIALING
        else:
            target = Status.ACTIVE
        restored = core.move(
            uow, current, Event.REACTIVATE, now=now, cause=_cause(actor, cause, "reactivate"), target=target,
            cancel_at_period_end=False, cancel_effective_at=None,
        )
        core.disarm(uow, current, now=now, kinds=(CANCELLATION_EFFECTIVE,))
        emit(uow, "subscription.reactivated", tenant_id, now, actor.label(), current.id)
        uow.commit()
    return restored


def _live(uow: UnitOfWork, tenant_id: str) -> Subscription:
    current = repo.current(uow.conn, tenant_id, for_update=True)
    if current is None:
        raise DomainError(reasons.NO_SUBSCRIPTION)
    return current


def cards(fb: Farebox, actor: Principal, tenant_id: str) -> cards_domain.Cards:
    """G11: the subscription card (one badge) and, when a change is scheduled, the upcoming card."""
    require_billing_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        now = now_for(uow, fb.clock, tenant_id)
        return cards_domain.cards(repo.current(uow.conn, tenant_id), repo.upcoming(uow.conn, tenant_id), now)


def request_sales_contact(
    fb: Farebox, actor: Principal, tenant_id: str, *, plan: str, catalog: str | None = None
) -> SalesRequest:
    """S1 *Contact sales*, A5 *Book a demo*: record the request; the answer is "Request received"."""
    require_billing_access(actor, tenant_id)
    with fb.uow() as uow:
        now = now_for(uow, fb.clock, tenant_id)
        if catalog is None:
            current = repo.current(uow.conn, tenant_id)
            if current is None:
                raise DomainError(
                    reasons.VALIDATION_ERROR,
                    detail="name the catalog: the tenant has no subscription",
                    details={"field": "catalog"},
                )
            catalog = current.catalog
        offered = catalog_service.offered_plan(uow.conn, catalog, plan)
        if offered.plan.sales is Sales.SELF_SERVE:
            raise DomainError(reasons.NOT_SALES_ASSISTED, plan=plan)
        request = SalesRequest(new_id("srq"), tenant_id, catalog, plan, offered.plan.sales.value, now)
        repo.insert_sales_request(
            uow.conn, tenant_id=tenant_id, id=request.id, catalog=catalog, plan=plan, kind=request.kind,
            requested_by=actor.label(), requested_at=now,
        )
        emit(
            uow,
            "subscription.sales_contact_requested",
            tenant_id,
            now,
            actor.label(),
            request.id,
            catalog=catalog,
            plan=plan,
            kind=request.kind,
        )
        uow.commit()
    return request


def current(fb: Farebox, actor: Principal, tenant_id: str) -> Subscription | None:
    require_billing_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        if tenants_repo.get_tenant(uow.conn, tenant_id) is None:
            raise DomainError(reasons.NOT_FOUND, what="Tenant")
        return repo.current(uow.conn, tenant_id)


def upcoming(fb: Farebox, actor: Principal, tenant_id: str) -> Subscription | None:
    require_billing_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        return repo.upcoming(uow.conn, tenant_id)


def transitions(fb: Farebox, actor: Principal, tenant_id: str) -> list[Transition]:
    """Every state change of the tenant's subscriptions, in order, with its cause (G3)."""
    require_billing_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        if tenants_repo.get_tenant(uow.conn, tenant_id) is None:
            raise DomainError(reasons.NOT_FOUND, what="Tenant")
        rows = repo.transitions(uow.conn, tenant_id)
    return [
        Transition(r["subscription_id"], r["from_status"], r["to_status"], r["at"], r["cause"], r["details"])
        for r in rows
    ]
