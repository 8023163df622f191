"""The billing run (`farebox bill`, and a pass of `farebox worker`): invoice and charge
every subscription whose current period is not billed yet (G13).

It pages through live subscriptions on paid plans whose current period has no
fee line (an anti-join, so a finished subscription costs nothing on the next
run), bills a batch at once with `invoicing.bill_periods` and commits every
batch.  `bill_periods` does what `invoicing.bill_period` does for each
subscription (the path the signals take; `per_subscription=True` runs it here,
for comparison), with each query and write made once for the whole batch.
The transaction that issues a batch also queues its charges (payment attempts
keyed `<billing key>:attempt:1`, docs/payments.md); the provider is asked only
after that commit, and the answers are recorded in a transaction of their own.
So a failure while charging (a lost connection, a kill) never rolls back an
invoice whose charge the provider made, and the queued attempt is asked again
with the same key (its due item; `charge_left_over` for invoices issued
without one): no double charge, no provider call under a database lock.
Killed at any point, it is simply run again: a committed batch is not
selected again, a batch cut short was rolled back whole, and the unique key
per subscription, period and kind makes a double invoice impossible anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from farebox.bootstrap import Farebox
from farebox.clocks.service import now_for
from farebox.invoicing.db import invoices as repo
from farebox.invoicing.domain.charges import InvoiceKind
from farebox.invoicing.services import issuing as invoicing
from farebox.kernel.access import Principal, require_operator
from farebox.payments import service as payments
from farebox.storage.tables.core import plan_versions
from farebox.storage.uow import UnitOfWork
from farebox.subscriptions import db as subscriptions_repo
from farebox.subscriptions.domain.states import Status, Subscription

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


def run(
    fb: Farebox,
    actor: Principal,
    *,
    batch_size: int = 500,
    on_progress: Callable[[int], None] | None = None,
    per_subscription: bool = False,
) -> BillingRunReport:
    """Bill every subscription due; `on_progress(n)` after each committed batch of n."""
    require_operator(actor)
    report = BillingRunReport()
    charge_left_over(fb, batch_size=batch_size)
    versions = _paid_plan_versions(fb)
    after: tuple[str, str] | None = None
    while True:
        with fb.uow() as uow:
            rows = repo.subscriptions_to_bill(
                uow.conn, statuses=BILLABLE_STATUSES, plan_version_ids=versions, after=after, limit=batch_size
            )
            if not rows:
                return report
            subscriptions = [subscriptions_repo.to_domain(uow.conn, row) for row in rows]
            starts = [
                invoicing.PeriodStart(s, s.period, _kind(s), now)
                for s, now in zip(subscriptions, _now_of(uow, fb, subscriptions, per_subscription), strict=True)
            ]
            issued: Sequence[invoicing.Issued | None]
            if per_subscription:  # the signals' path, one invoice at a time
                issued = [
                    invoicing.bill_period(uow, s.subscription, s.period, kind=s.kind, now=s.now, cause=CAUSE)
                    for s in starts
                ]
            else:
                issued = invoicing.bill_periods(uow, starts, cause=CAUSE)
            report.examined += len(rows)
            report.invoice_ids += [one.id for one in issued if one is not None]
            report.invoiced = len(report.invoice_ids)
            after = (rows[-1]["tenant_id"], rows[-1]["id"])
            uow.commit()  # then the queued charges are sent, outside the transaction
        if on_progress is not None:
            on_progress(len(rows))


CAUSE = "billing run"


def charge_left_over(fb: Farebox, *, batch_size: int = 500) -> int:
    """Charge the open invoices that have no payment attempt at all (issued before charges were
    queued with their invoice), each with the idempotency key it would have had; how many."""
    seen: set[tuple[str, str]] = set()
    while True:
        with fb.uow() as uow:
            pairs = [pair for pair in repo.never_charged(uow.conn, batch_size) if pair not in seen]
            if not pairs:
                return len(seen)
            clock_times = repo.clock_times(uow.conn, {t for t, _ in pairs})
            real_now = fb.clock.now()
            payments.collect_all(
                uow,
                [(t, i, clock_times[t] or real_now) for t, i in pairs],
                cause="billing run: charged after an interrupted run",
            )
            uow.commit()
        seen.update(pairs)


def _kind(subscription: Subscription) -> InvoiceKind:
    """The first period is the `subscription` invoice, every later one a `renewal`."""
    return InvoiceKind.SUBSCRIPTION if subscription.period.start <= subscription.starts_at else InvoiceKind.RENEWAL


def _now_of(uow: UnitOfWork, fb: Farebox, subscriptions: Sequence[Subscription], one_by_one: bool) -> list[datetime]:
    """Each subscription's tenant time (its test clock's, or the real one), in one query unless `one_by_one`."""
    tenant_ids = {s.tenant_id for s in subscriptions}
    if one_by_one:
        now_by_tenant = {t: now_for(uow, fb.clock, t) for t in sorted(tenant_ids)}
    else:
        clock_times = repo.clock_times(uow.conn, tenant_ids)
        real_now = fb.clock.now()
        now_by_tenant = {t: clock_times[t] or real_now for t in tenant_ids}
    return [now_by_tenant[s.tenant_id] for s in subscriptions]
