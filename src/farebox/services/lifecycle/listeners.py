"""What the lifecycle does when other areas report something (signals, same transaction).

- `invoice.payment_failed` with `renewal` true: payment issue, grace per plan (G9, A7).
- `invoice.paid` for the overdue invoice: settled, back to active (G9).
- `usage.recorded` during a trial: trial usage kept for the card (A3, G11);
  reaching the bound ends the trial.
- `usage.trial_exhausted`: the trial ends by usage now (A3).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from farebox.adapters.db.repos import subscriptions as repo
from farebox.adapters.db.uow import UnitOfWork
from farebox.domain.lifecycle.machine import Event
from farebox.domain.subscriptions import Status
from farebox.services.lifecycle import core
from farebox.services.lifecycle.core import GRACE_END, emit, iso
from farebox.services.signals import Signal, batch_form_of, on


@on("invoice.payment_failed")
def open_payment_issue(uow: UnitOfWork, signal: Signal) -> None:
    if not signal.data.get("renewal"):
        return  # G9 is about renewals; other failed charges are retried by invoicing
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
    subscription_id = signal.data.get("subscription_id")
    if not subscription_id:
        return
    s = repo.get(uow.conn, signal.tenant_id, subscription_id, for_update=True)
    if s is not None and s.status is Status.REPLACED:
        s = repo.current(uow.conn, signal.tenant_id, for_update=True)  # a scheduled change carried the debt over
    if s is None or s.grace_ends_at is None or s.overdue_invoice_id != signal.subject:
        return
    core.move(
        uow, s, Event.PAYMENT_SETTLED, now=signal.at, cause=f"invoice {signal.subject} paid",
        grace_ends_at=None, overdue_invoice_id=None, details={"invoice_id": signal.subject},
    )
    core.disarm(uow, s, now=signal.at, kinds=(GRACE_END,))
    emit(uow, "subscription.payment_settled", s.tenant_id, signal.at, "system", s.id, invoice_id=signal.subject)


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
