"""The billing run (`farebox bill`, and a pass of `farebox worker`): invoice and charge
every subscription whose current period is not billed yet (G13).

It pages through live subscriptions on paid plans whose current period has no
fee line (an anti-join, so a finished subscription costs nothing on the next
run), bills each one with `invoicing.bill_period` and commits every batch.
Killed at any point, it is simply run again: a committed batch is not
selected again, a batch cut short was rolled back whole, and the unique key
per subscription, period and kind makes a double invoice impossible anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from farebox.adapters.db.repos import invoicing as repo
from farebox.adapters.db.repos import subscriptions as subscriptions_repo
from farebox.adapters.db.tables.core import plan_versions
from farebox.bootstrap import Farebox
from farebox.domain.access import Principal, require_operator
from farebox.domain.invoicing import InvoiceKind
from farebox.domain.subscriptions import Status
from farebox.services import invoicing
from farebox.services.clocks import now_for

BILLABLE_STATUSES = (Status.ACTIVE.value, Status.PAYMENT_ISSUE.value, Status.CANCELLATION_SCHEDULED.value)


@dataclass
class BillingRunReport:
    examined: int = 0
    invoiced: int = 0
    invoice_ids: list[str] = field(default_factory=list)


def _paid_plan_versions(fb: Farebox) -> list[int]:
    with fb.uow(readonly=True) as uow:
        ids = [row.id for row in uow.conn.execute(plan_versions.select())]
        return [vid for vid in ids if not invoicing.plan_for_version(uow.conn, vid).is_free]


def due_count(fb: Farebox) -> int:
    """How many subscriptions the next run would examine (for a progress bar)."""
    versions = _paid_plan_versions(fb)
    with fb.uow(readonly=True) as uow:
        return repo.count_subscriptions_to_bill(uow.conn, statuses=BILLABLE_STATUSES, plan_version_ids=versions)


def run(fb: Farebox, actor: Principal, *, batch_size: int = 500, on_progress: Callable[[int], None] | None = None) -> BillingRunReport:
    """Bill every subscription due; `on_progress(n)` after each committed batch of n."""
    require_operator(actor)
    report = BillingRunReport()
    versions = _paid_plan_versions(fb)
    after: tuple[str, str] | None = None
    while True:
        with fb.uow() as uow:
            rows = repo.subscriptions_to_bill(uow.conn, statuses=BILLABLE_STATUSES, plan_version_ids=versions, after=after, limit=batch_size)
            if not rows:
                return report
            clocks: dict[str, object] = {}
            for row in rows:
                subscription = subscriptions_repo.to_domain(uow.conn, row)
                now = clocks.get(subscription.tenant_id)
                if now is None:
                    now = clocks[subscription.tenant_id] = now_for(uow, fb.clock, subscription.tenant_id)
                first = subscription.period.start <= subscription.starts_at
                kind = InvoiceKind.SUBSCRIPTION if first else InvoiceKind.RENEWAL
                issued = invoicing.bill_period(uow, subscription, subscription.period, kind=kind, now=now, cause="billing run")  # type: ignore[arg-type]
                report.examined += 1
                if issued is not None:
                    report.invoiced += 1
                    report.invoice_ids.append(issued.id)
            after = (rows[-1]["tenant_id"], rows[-1]["id"])
            uow.commit()
        if on_progress is not None:
            on_progress(len(rows))
