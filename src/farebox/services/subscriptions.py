"""Subscribing a tenant to a plan (the entry point of the lifecycle)."""

from __future__ import annotations

from datetime import datetime

from farebox.adapters.db.ids import new_id
from farebox.adapters.db.repos import subscriptions as repo
from farebox.adapters.db.repos import tenants as tenants_repo
from farebox.adapters.db.uow import UnitOfWork
from farebox.bootstrap import Farebox
from farebox.domain import reasons
from farebox.domain.access import Principal, require_billing_access
from farebox.domain.periods import period_at
from farebox.domain.reasons import DomainError
from farebox.domain.subscriptions import Status, Subscription
from farebox.services import catalog as catalog_service
from farebox.services import due
from farebox.services.clocks import now_for

PERIOD_END = "period_end"


def subscribe(fb: Farebox, actor: Principal, tenant_id: str, *, catalog: str, plan: str, cause: str = "api") -> Subscription:
    """Start a plan now: free plans are `free`, paid plans `active` (billed in advance)."""
    require_billing_access(actor, tenant_id)
    with fb.uow() as uow:
        now = now_for(uow, fb.clock, tenant_id)
        offered = catalog_service.offered_plan(uow.conn, catalog, plan)
        current = repo.current(uow.conn, tenant_id, for_update=True)
        if current is not None and current.is_live:
            raise DomainError(reasons.CONFLICT, detail="The tenant already has a live subscription; change its plan instead.")
        sub_id = new_id("sub")
        period = period_at(now, offered.plan.interval, now)
        status = Status.FREE if offered.plan.is_free else Status.ACTIVE
        repo.insert_subscription(
            uow.conn,
            tenant_id=tenant_id,
            id=sub_id,
            plan_version_id=offered.version_id,
            status=status.value,
            anchor_at=now,
            period_start_at=period.start,
            period_end_at=period.end,
            starts_at=now,
            created_at=now,
            cancel_at_period_end=False,
            row_version=1,
            settings={},
        )
        repo.record_transition(uow.conn, tenant_id=tenant_id, subscription_id=sub_id, from_status=None, to_status=status, at=now, cause=f"{cause}: subscribe {catalog}/{plan} by {actor.label()}")
        due.schedule(uow, tenant_id=tenant_id, kind=PERIOD_END, ref=sub_id, due_at=period.end, now=now)
        subscription = repo.get(uow.conn, tenant_id, sub_id)
        uow.commit()
    assert subscription is not None
    return subscription


def current(fb: Farebox, actor: Principal, tenant_id: str) -> Subscription | None:
    require_billing_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        if tenants_repo.get_tenant(uow.conn, tenant_id) is None:
            raise DomainError(reasons.NOT_FOUND, what="Tenant")
        return repo.current(uow.conn, tenant_id)


@due.handler(PERIOD_END)
def _roll_period(uow: UnitOfWork, item: dict, now: datetime) -> str:
    """At a period's end a live subscription starts its next period."""
    subscription = repo.get(uow.conn, item["tenant_id"], item["ref"], for_update=True)
    if subscription is None or not subscription.is_live:
        return "nothing to do: subscription not live"
    nxt = period_at(subscription.anchor_at, subscription.plan.interval, item["due_at"])
    repo.update_subscription(uow.conn, subscription.tenant_id, subscription.id, period_start_at=nxt.start, period_end_at=nxt.end)
    due.schedule(uow, tenant_id=subscription.tenant_id, kind=PERIOD_END, ref=subscription.id, due_at=nxt.end, now=now)
    return f"renewed: period {nxt.start.isoformat()} - {nxt.end.isoformat()}"
