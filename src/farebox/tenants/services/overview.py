"""The operator's list of tenants: state, usage this period and MRR, in a constant number of statements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from farebox.bootstrap import Farebox
from farebox.kernel.access import Principal, require_operator
from farebox.kernel.money import Money
from farebox.metering.services.usage import UsageSummary, summaries_of
from farebox.subscriptions.domain.states import Subscription, monthly_recurring_revenue, mrr_totals
from farebox.tenants.db import tenants as tenants_repo


@dataclass(frozen=True)
class TenantRow:
    tenant: dict[str, Any]
    subscription: Subscription | None
    usage: UsageSummary
    mrr: Money | None


@dataclass(frozen=True)
class TenantOverview:
    rows: list[TenantRow]
    mrr_totals: dict[str, Money]  # per currency


def tenant_overview(fb: Farebox, actor: Principal, *, search: str | None = None, limit: int = 200) -> TenantOverview:
    """Operator only.  Five statements whatever the number of tenants (no query per tenant)."""
    require_operator(actor)
    with fb.uow(readonly=True) as uow:
        found = tenants_repo.list_tenants(uow.conn, search=search, limit=limit)
        ids = [t["id"] for t in found]
        current = uow.subscriptions.current_of_many(ids)
        usage = summaries_of(uow.metering, current, ids)
    rows = [
        TenantRow(t, current.get(t["id"]), usage[t["id"]], monthly_recurring_revenue(current.get(t["id"])))
        for t in found
    ]
    return TenantOverview(rows, mrr_totals([r.subscription for r in rows]))
