"""Test clocks (G2): create, attach tenants, advance; and `now` for a tenant."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from farebox.bootstrap import Farebox
from farebox.clocks import db as repo
from farebox.events import db as due_repo
from farebox.events import due
from farebox.events.due import Processed
from farebox.kernel import reasons
from farebox.kernel.access import Principal, require_operator, require_tenant_access
from farebox.kernel.clock import Clock, ensure_utc
from farebox.kernel.reasons import DomainError
from farebox.records.services import audit
from farebox.storage.ids import new_id
from farebox.storage.uow import UnitOfWork
from farebox.subscriptions import db as subscriptions_repo
from farebox.subscriptions.domain.states import Subscription
from farebox.tenants.db import tenants as tenants_repo


def now_for(uow: UnitOfWork, clock: Clock, tenant_id: str) -> datetime:
    """The time a tenant lives in: its test clock's, or the real clock's."""
    return tenant_time(clock, *repo.tenant_clock_time(uow.conn, tenant_id))


def tenant_now(fb: Farebox, actor: Principal, tenant_id: str) -> datetime:
    """The tenant's `now`: its test clock's time, or the real clock's (G2)."""
    require_tenant_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        return now_for(uow, fb.clock, tenant_id)


def now_and_current(uow: UnitOfWork, clock: Clock, tenant_id: str) -> tuple[datetime, Subscription | None]:
    """`now_for` and the tenant's current subscription (`repos.subscriptions.current`), read in one statement."""
    exists, test_now, sub = subscriptions_repo.clock_and_current(uow.conn, tenant_id)
    return tenant_time(clock, exists, test_now), sub


def tenant_time(clock: Clock, exists: bool, test_now: datetime | None) -> datetime:
    if not exists:
        raise DomainError(reasons.NOT_FOUND, what="Tenant")
    return test_now if test_now is not None else clock.now()


def create(fb: Farebox, actor: Principal, *, name: str, start: datetime | None = None) -> dict[str, Any]:
    require_operator(actor)
    clock = {
        "id": new_id("clk"),
        "name": name,
        "now_at": ensure_utc(start) if start else fb.clock.now(),
        "created_at": fb.clock.now(),
    }
    with fb.uow() as uow:
        repo.insert_clock(uow.conn, **clock)
        uow.commit()
    return clock


def get(fb: Farebox, actor: Principal, clock_id: str) -> dict[str, Any]:
    require_operator(actor)
    with fb.uow(readonly=True) as uow:
        clock = repo.get_clock(uow.conn, clock_id)
        if clock is None:
            raise DomainError(reasons.NOT_FOUND, what="Test clock")
        return {**clock, "tenants": repo.tenants_on_clock(uow.conn, clock_id)}


def list_all(fb: Farebox, actor: Principal) -> list[dict[str, Any]]:
    require_operator(actor)
    with fb.uow(readonly=True) as uow:
        return repo.list_clocks(uow.conn)


def attach(fb: Farebox, actor: Principal, clock_id: str, tenant_id: str) -> None:
    """Put a tenant on a test clock.  Only before it has a subscription would be
    stricter; farebox allows it any time, the tenant then lives in clock time."""
    require_operator(actor)
    with fb.uow() as uow:
        if repo.get_clock(uow.conn, clock_id) is None:
            raise DomainError(reasons.NOT_FOUND, what="Test clock")
        tenant = tenants_repo.get_tenant(uow.conn, tenant_id)
        if tenant is None:
            raise DomainError(reasons.NOT_FOUND, what="Tenant")
        before = tenant["test_clock_id"]
        tenants_repo.update_tenant(uow.conn, tenant_id, test_clock_id=clock_id)
        audit.publish(
            uow,
            "tenant.clock_attached",
            tenant_id=tenant_id,
            at=fb.clock.now(),
            actor=actor,
            subject=clock_id,
            before={"test_clock_id": before},
            after={"test_clock_id": clock_id},
        )
        uow.commit()


@dataclass
class AdvanceReport:
    clock_id: str
    from_at: datetime
    to_at: datetime
    processed: list[Processed] = field(default_factory=list)


def advance(
    fb: Farebox,
    actor: Principal,
    clock_id: str,
    *,
    to: datetime | None = None,
    by: timedelta | None = None,
    on_item: Callable[[Processed], None] | None = None,
) -> AdvanceReport:
    """Move a test clock forward.  Everything that falls due in the skipped
    time happens in order, each at its own due time, exactly as it would have
    in real time; then the clock stops at the target."""
    require_operator(actor)
    if (to is None) == (by is None):
        raise DomainError(reasons.VALIDATION_ERROR, detail="give either `to` or `by`", details={"field": "to"})
    with fb.uow() as uow:
        clock = repo.get_clock(uow.conn, clock_id, for_update=True)
        if clock is None:
            raise DomainError(reasons.NOT_FOUND, what="Test clock")
        start = clock["now_at"]
    target = ensure_utc(to) if to is not None else start + (by or timedelta(0))
    if target < start:
        raise DomainError(reasons.CLOCK_BACKWARDS, now=start.isoformat())
    report = AdvanceReport(clock_id, start, target)
    while True:
        with fb.uow() as uow:
            clock = repo.get_clock(uow.conn, clock_id, for_update=True)
            assert clock is not None  # found above; clocks are never deleted
            item = due_repo.next_for_clock(uow.conn, clock_id, target)
            if item is None:
                repo.set_clock(uow.conn, clock_id, max(target, clock["now_at"]))
                uow.commit()
                break
            at = max(item["due_at"], clock["now_at"])
            repo.set_clock(uow.conn, clock_id, at)
            processed = due.run_item(uow, item, at)
            uow.commit()
        report.processed.append(processed)
        if on_item is not None:
            on_item(processed)
    return report
