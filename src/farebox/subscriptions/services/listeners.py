"""What the lifecycle does when other areas report something (signals, same transaction).

- `invoice.payment_failed` (a first invoice, an upgrade's proration or a renewal; a
  bank transfer not received by its due date): payment issue, grace per plan (G9, A7).
- `invoice.paid` or `invoice.voided` for the overdue invoice: settled, back to active,
  unless another open invoice is overdue, which then holds the grace (G9).
- `usage.recorded` during a trial: trial usage kept for the card (A3, G11);
  reaching the bound ends the trial.
- `usage.trial_exhausted`: the trial ends by usage now (A3).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from farebox.events.signals import Signal, batch_form_of, on
from farebox.invoicing.db import invoices as invoices_repo
from farebox.payments import db as payments_repo
from farebox.storage.uow import UnitOfWork
from farebox.subscriptions import db as repo
from farebox.subscriptions.domain.machine import Event
from farebox.subscriptions.domain.states import Status, Subscription
from farebox.subscriptions.services import lifecycle as core
from farebox.subscriptions.services.lifecycle import GRACE_END, emit, iso


@on("invoice.payment_failed")
def open_payment_issue(uow: UnitOfWork, signal: Signal) -> None:
    """Any unpaid invoice opens the grace, not only a renewal's: a first or upgrade payment
    that fails would otherwise leave a paid plan in use without paying."""
    s = repo.get(uow.conn, signal.tenant_id, signal.data["subscription_id"], for_update=True)
    if s is None or s.status not in (Status.ACTIVE, Status.CANCELLATION_SCHEDULED) or s.grace_ends_at is not None:
        return  # already in grace, or nothing to put in grace
    grace_ends_at = signal.at + timedelta(days=s.plan.grace_days)
    core.move(
        uow,
        s,
        Event.PAYMENT_FAILED,
        now=signal.at,
        cause=f"invoice {signal.subject} payment failed: {signal.data.get('reason', '')}",
        grace_ends_at=grace_ends_at,
        overdue_invoice_id=signal.subject,
        details={"invoice_id": signal.subject},
    )
    core.arm(uow, GRACE_END, s, due_at=grace_ends_at, now=signal.at)
    emit(
        uow,
        "subscription.payment_issue",
        s.tenant_id,
        signal.at,
        "system",
        s.id,
        grace_ends_at=iso(grace_ends_at),
        invoice_id=signal.subject,
    )


@on("invoice.paid")
def settle_payment(uow: UnitOfWork, signal: Signal) -> None:
    _release(uow, signal, cause=f"invoice {signal.subject} paid")


@on("invoice.voided")
def settle_by_void(uow: UnitOfWork, signal: Signal) -> None:
    """A voided invoice is owed no more; the lifecycle heals as if it were paid (no lock-out for it)."""
    _release(uow, signal, cause=f"invoice {signal.subject} voided by {signal.actor}: {signal.data.get('reason', '')}")


def _release(uow: UnitOfWork, signal: Signal, *, cause: str) -> None:
    """The overdue invoice is settled (paid or voided): out of payment issue, unless another
    of the tenant's open invoices is overdue; that one then holds the grace already running."""
    subscription_id = signal.data.get("subscription_id")
    if not subscription_id:
        return
    s = repo.get(uow.conn, signal.tenant_id, subscription_id, for_update=True)
    if s is not None and s.status is Status.REPLACED:
        s = repo.current(uow.conn, signal.tenant_id, for_update=True)  # a scheduled change carried the debt over
    if s is None or s.grace_ends_at is None or s.overdue_invoice_id != signal.subject:
        return
    still = _overdue_invoice(uow, s, signal.at, besides=str(signal.subject))
    if still is not None:
        repo.update_subscription(uow.conn, s.tenant_id, s.id, overdue_invoice_id=still)
        return
    core.move(
        uow, s, Event.PAYMENT_SETTLED, now=signal.at, cause=cause,
        grace_ends_at=None, overdue_invoice_id=None, details={"invoice_id": signal.subject},
    )
    core.disarm(uow, s, now=signal.at, kinds=(GRACE_END,))
    emit(uow, "subscription.payment_settled", s.tenant_id, signal.at, "system", s.id, invoice_id=signal.subject)


def _overdue_invoice(uow: UnitOfWork, s: Subscription, now: datetime, *, besides: str) -> str | None:
    """Another open invoice of the tenant that is overdue: a charge of it failed, or its
    bank-transfer due date passed; the oldest such, or None."""
    for invoice in sorted(
        invoices_repo.list_for_tenant(uow.conn, s.tenant_id, status="open"), key=lambda i: (i["issued_at"], i["id"])
    ):
        if invoice["id"] == besides:
            continue
        if invoice.get("due_at") is not None and invoice["due_at"] <= now:
            return str(invoice["id"])
        if any(a["status"] == "failed" for a in payments_repo.attempts(uow.conn, s.tenant_id, invoice["id"])):
            return str(invoice["id"])
    return None


@batch_form_of(settle_payment)
def settle_payments(uow: UnitOfWork, batch: Sequence[Signal]) -> None:
    """The billing run's `invoice.paid` at once: only a subscription in grace (or replaced,
    carrying its debt over) can be settled, so one query finds those and the rest are skipped."""
    pairs = sorted(
        {(signal.tenant_id, signal.data["subscription_id"]) for signal in batch if signal.data.get("subscription_id")}
    )
    candidates = repo.in_grace_or_replaced(uow.conn, pairs)
    for signal in batch:
        if (signal.tenant_id, signal.data.get("subscription_id")) in candidates:
            settle_payment(uow, signal)


@on("usage.recorded")
def count_trial_usage(uow: UnitOfWork, signal: Signal) -> None:
    if signal.data.get("trial") is False:  # metering says no trial bound is in force: nothing to keep
        return
    s = repo.get(uow.conn, signal.tenant_id, signal.subject or "", for_update=True)
    if s is None or s.status is not Status.TRIALING or s.plan.trial is None:
        return
    meter = str(signal.data.get("meter"))
    bound = s.plan.trial.usage.get(meter)
    if bound is None:
        return
    used = int(signal.data.get("after", 0))
    repo.update_subscription(uow.conn, s.tenant_id, s.id, trial_usage={**s.trial_usage, meter: used})
    if used >= bound:
        s = repo.get(uow.conn, s.tenant_id, s.id)
        assert s is not None
        core.end_trial(
            uow, s, now=signal.at, cause_kind="usage", cause=f"usage: trial {meter} used up ({used} of {bound})"
        )


@on("usage.trial_exhausted")
def end_trial_by_usage(uow: UnitOfWork, signal: Signal) -> None:
    s = repo.get(uow.conn, signal.tenant_id, signal.subject or "", for_update=True)
    if s is None or s.status is not Status.TRIALING:
        return
    meter, bound = signal.data.get("meter"), signal.data.get("bound")
    if meter is not None and bound is not None:
        repo.update_subscription(uow.conn, s.tenant_id, s.id, trial_usage={**s.trial_usage, meter: int(bound)})
        s = repo.get(uow.conn, s.tenant_id, s.id)
        assert s is not None
    core.end_trial(uow, s, now=signal.at, cause_kind="usage", cause=f"usage: trial {meter} exhausted (bound {bound})")
