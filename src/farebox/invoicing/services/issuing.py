"""Issuing invoices: what the lifecycle's signals and the billing run turn into invoices (G13, G7).

Every path ends in `bill(...)`: list what should be billed, subtract what was
billed under the same keys (`farebox.invoicing.domain.charges.recompute`), and issue
one invoice with the difference under a unique key per subscription, period
and kind.  So a signal delivered twice, a billing run rerun after a crash, or
a run racing a listener, never bills anything twice.

Listeners (see the Signals table in docs/architecture.md):

* `subscription.started` -> the first period's fee, in advance (paid plans);
* `subscription.renewed` -> the new period's fee, and the overage of the one that ended;
* `subscription.plan_changed` -> immediate: credit for the unused time of the
  old plan and the new plan's prorated charge, to the second; at period end:
  the new plan's fee and the old one's overage.

Overage quantities come from metering through one port, `uow.ports.usage_source`
(`bootstrap` wires `farebox.metering.services.usage.billable_usage`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from farebox.catalog import db as catalog_repo
from farebox.catalog.domain import Billing, Plan
from farebox.catalog.files import plan_from_document
from farebox.events import signals
from farebox.events.signals import Signal
from farebox.invoicing.db import invoices as repo
from farebox.invoicing.domain.billing_details import bill_to
from farebox.invoicing.domain.charges import (
    Charge,
    Document,
    InvoiceKind,
    Segment,
    Totals,
    document_for,
    fee_charge,
    invoice_number,
    number_series,
    overage_charges,
    plan_change_charges,
    recompute,
    totals,
)
from farebox.invoicing.services.credits import CreditBook
from farebox.kernel.periods import Period, period_at
from farebox.payments import service as payments
from farebox.ports import InvoiceNumbering, UsageSource
from farebox.storage.ids import new_id
from farebox.storage.immutable_cache import ImmutableRowCache
from farebox.storage.uow import UnitOfWork
from farebox.subscriptions import db as subscriptions_repo
from farebox.subscriptions.domain.states import Status, Subscription
from farebox.tenants.db import tenants as tenants_repo


def usage_source(uow: UnitOfWork) -> UsageSource:
    """The usage port `bootstrap` wired (metering's `usage.billable_usage`)."""
    return uow.ports.usage_source


_PLANS: ImmutableRowCache[Plan] = ImmutableRowCache()


def plan_for_version(conn: Connection, version_id: int) -> Plan:
    """The plan of a stored plan version (versions never change, so they are cached)."""

    def load() -> Plan:
        row = catalog_repo.plan_version(conn, version_id)
        if row is None:
            raise LookupError(f"plan version {version_id} not found")
        return plan_from_document(row["document"], catalog=row["catalog"], code=row["code"])

    return _PLANS.get(conn, version_id, load)


@dataclass(frozen=True)
class Issued:
    """An invoice just written (or None from `bill` when there was nothing to bill)."""

    id: str
    tenant_id: str
    number: str
    subscription_id: str
    kind: str
    status: str
    currency: str
    total_minor: int
    lines: int
    document: str = Document.INVOICE.value  # invoice | credit_note
    credit_applied_minor: int = 0  # the credit balance set against the total
    amount_due_minor: int = 0  # what the payment charges


def bill(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    subscription_id: str,
    kind: InvoiceKind,
    billing_key: str,
    period: Period,
    should: Sequence[Charge],
    subscription_ids: Sequence[str],
    now: datetime,
    cause: str,
) -> Issued | None:
    """Issue the difference between `should` and what is billed under the same keys."""
    if repo.invoice_exists(uow.conn, tenant_id, billing_key):
        return None
    billed = repo.billed_by_key(uow.conn, tenant_id, subscription_ids)
    lines = recompute(should, billed)
    if not lines:
        return None
    return issue(
        uow,
        tenant_id=tenant_id,
        subscription_id=subscription_id,
        kind=kind,
        billing_key=billing_key,
        period=period,
        lines=lines,
        now=now,
        cause=cause,
    )


def issue(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    subscription_id: str,
    kind: InvoiceKind,
    billing_key: str,
    period: Period,
    lines: Sequence[Charge],
    now: datetime,
    cause: str,
) -> Issued | None:
    """Write a finalized invoice (or credit note) with the next number of its series, set the credit
    balance against it, then publish `invoice.issued` (or `credit_note.issued`)."""
    tenant = tenants_repo.get_tenant(uow.conn, tenant_id)
    assert tenant is not None
    draft = Draft(tenant_id, subscription_id, kind, billing_key, period, tuple(lines), now, cause)
    numbering = uow.ports.invoice_numbering
    priced = _priced(draft, tenant)
    book = CreditBook.open(uow.conn, [(tenant_id, priced.total.currency)])
    number = repo.next_number(uow.conn, _series(priced, tenant, numbering), now.year)
    row, issued = _finalize(draft, tenant, priced, number, book, numbering)
    if not repo.insert_invoice(uow.conn, **row):
        # a concurrent writer took the key: our number must not be used, so fail the transaction
        raise RuntimeError(f"invoice {billing_key} was issued concurrently")
    book.write(uow.conn)
    _publish_issued(uow, [(issued, now)])
    payments.collect(uow, tenant_id, issued.id, now)
    return issued


@dataclass(frozen=True)
class Draft:
    """An invoice to issue: the lines `recompute` left for one billing key."""

    tenant_id: str
    subscription_id: str
    kind: InvoiceKind
    billing_key: str
    period: Period
    lines: tuple[Charge, ...]
    now: datetime
    cause: str


def issue_all(uow: UnitOfWork, drafts: Sequence[Draft], *, collect: bool = True) -> list[Issued]:
    """`issue` for many invoices at once (the billing run), with the same numbers, rows, credits,
    signals and charges: the tenants and their credit balances read in one query each, one block of
    numbers per series and year reserved with one `UPDATE … RETURNING` and given out in the drafts'
    order, the invoices and their lines written with `executemany`, then `invoice.issued` for all
    and `payments.collect_all`."""
    if not drafts:
        return []
    parties = repo.billing_parties(uow.conn, (d.tenant_id for d in drafts))
    numbering = uow.ports.invoice_numbering
    priced = [_priced(d, parties[d.tenant_id]) for d in drafts]
    series = [_series(p, parties[d.tenant_id], numbering) for d, p in zip(drafts, priced, strict=True)]
    # the balances are locked before the number series, as `issue` does: one lock order, no deadlock between them
    book = CreditBook.open(uow.conn, {(d.tenant_id, p.total.currency) for d, p in zip(drafts, priced, strict=True)})
    per_series = Counter((s, d.now.year) for s, d in zip(series, drafts, strict=True))
    next_of = {key: repo.reserve_numbers(uow.conn, key[0], key[1], count) for key, count in sorted(per_series.items())}
    rows, issued = [], []
    for draft, price, one_series in zip(drafts, priced, series, strict=True):
        sequence = next_of[(one_series, draft.now.year)]
        next_of[(one_series, draft.now.year)] += 1
        row, one = _finalize(draft, parties[draft.tenant_id], price, sequence, book, numbering)
        rows.append(row)
        issued.append(one)
    lines = {row["id"]: row.pop("lines") for row in rows}
    if repo.insert_invoices(uow.conn, rows, lines) != len(rows):
        # a concurrent writer took a key: the numbers reserved must not be used, so fail the transaction
        raise RuntimeError("an invoice of this batch was issued concurrently")
    book.write(uow.conn)
    _publish_issued(uow, [(one, draft.now) for one, draft in zip(issued, drafts, strict=True)])
    if collect:
        payments.collect_all(
            uow, [(one.tenant_id, one.id, draft.now) for one, draft in zip(issued, drafts, strict=True)]
        )
    return issued


def _priced(draft: Draft, tenant: Mapping[str, Any]) -> Totals:
    return totals(draft.lines, currency=draft.lines[0].currency, tax_rate_bp=int(tenant.get("tax_rate_bp") or 0))


def _series(priced: Totals, tenant: Mapping[str, Any], numbering: InvoiceNumbering) -> str:
    """The number series of a document: invoice or credit note, real or test clock (G13)."""
    on_test_clock = tenant.get("test_clock_id") is not None
    return number_series(numbering.issuer, document_for(priced.total.amount_minor), test_clock=on_test_clock)


def _finalize(draft: Draft, tenant: Mapping[str, Any], t: Totals, sequence: int, book: CreditBook,
              numbering: InvoiceNumbering) -> tuple[dict[str, Any], Issued]:
    """The row (with its `lines`) of a draft numbered `sequence` in its series, the credit balance
    set against it in `book`, and what `issue` returns."""
    currency = t.total.currency
    invoice_id = new_id("inv")
    document = document_for(t.total.amount_minor)
    number = invoice_number(
        numbering.pattern, issuer=_series(t, tenant, numbering), year=draft.now.year, sequence=sequence
    )
    use = book.settle(
        tenant_id=draft.tenant_id,
        currency=currency,
        total_minor=t.total.amount_minor,
        document_id=invoice_id,
        number=number,
        now=draft.now,
        cause=draft.cause,
    )
    if document is Document.CREDIT_NOTE:
        status = "issued"
    else:
        status = "open" if use.amount_due_minor > 0 else "paid"
    row = {
        "tenant_id": draft.tenant_id,
        "id": invoice_id,
        "billing_key": draft.billing_key,
        "number": number,
        "subscription_id": draft.subscription_id,
        "kind": draft.kind.value,
        "document": document.value,
        "status": status,
        "currency": currency,
        "subtotal_minor": t.subtotal.amount_minor,
        "tax_rate_bp": t.tax_rate_bp,
        "tax_minor": t.tax.amount_minor,
        "total_minor": t.total.amount_minor,
        "credit_applied_minor": use.applied_minor,
        "amount_due_minor": use.amount_due_minor,
        "tax_id": tenant.get("tax_id"),
        "bill_to": bill_to(tenant),  # the billing details as they are at issue time
        "period_start_at": draft.period.start,
        "period_end_at": draft.period.end,
        "issued_at": draft.now,
        "paid_at": draft.now if status == "paid" else None,
        "voided_at": None,
        "cause": draft.cause,
        "lines": [_line_row(line) for line in draft.lines],
    }
    issued = Issued(invoice_id, draft.tenant_id, number, draft.subscription_id, draft.kind.value, status, currency,
                    t.total.amount_minor, len(draft.lines), document.value, use.applied_minor, use.amount_due_minor)
    return row, issued


def _publish_issued(uow: UnitOfWork, issued: Sequence[tuple[Issued, datetime]]) -> None:
    """The signals of documents just written, one batch per kind, in the documents' order."""
    by_kind: dict[str, list[Signal]] = {}
    for one, now in issued:
        for signal in _issued_signals(one, now):
            by_kind.setdefault(signal.kind, []).append(signal)
    for kind in ("invoice.issued", "invoice.paid", "credit_note.issued"):
        signals.publish_all(uow, by_kind.get(kind, []))


def _issued_signals(issued: Issued, now: datetime) -> list[Signal]:
    """`invoice.issued` (and `invoice.paid` when the credit balance covered it all), or `credit_note.issued`."""
    if issued.document == Document.CREDIT_NOTE.value:
        data = {"subscription_id": issued.subscription_id, "number": issued.number, "total_minor": issued.total_minor,
                "currency": issued.currency, "kind": issued.kind}
        return [Signal("credit_note.issued", issued.tenant_id, now, "system", issued.id, data)]
    out = [_issued_signal(issued, now)]
    if issued.status == "paid" and issued.credit_applied_minor > 0:
        paid = {"subscription_id": issued.subscription_id, "by": "credit"}
        out.append(Signal("invoice.paid", issued.tenant_id, now, "system", issued.id, paid))
    return out


def _issued_signal(issued: Issued, now: datetime) -> Signal:
    data = {"subscription_id": issued.subscription_id, "number": issued.number, "total_minor": issued.total_minor,
            "currency": issued.currency, "kind": issued.kind, "credit_applied_minor": issued.credit_applied_minor,
            "amount_due_minor": issued.amount_due_minor}
    return Signal("invoice.issued", issued.tenant_id, now, "system", issued.id, data)


def _line_row(line: Charge) -> dict[str, Any]:
    return {
        "key": line.key,
        "kind": line.kind.value,
        "description": line.description,
        "subscription_id": line.subscription_id,
        "plan_version_id": line.plan_version_id,
        "quantity": line.quantity,
        "unit_amount_minor": line.unit_amount_minor,
        "amount_minor": line.amount_minor,
        "period_start_at": line.period_start_at,
        "period_end_at": line.period_end_at,
        "service_start_at": line.service_start_at,
        "service_end_at": line.service_end_at,
    }


# -- what should be billed ------------------------------------------------------


def _key(subscription_id: str, start: datetime, kind: InvoiceKind) -> str:
    return f"{subscription_id}:{start.strftime('%Y%m%dT%H%M%SZ')}:{kind.value}"


def _whole(subscription: Subscription, period: Period) -> Segment:
    return Segment(subscription.id, subscription.plan_version_id, subscription.plan, period, period.start, period.end)


def period_charges(
    uow: UnitOfWork, subscription: Subscription, period: Period, *, previous: Period | None
) -> list[Charge]:
    """A period's start: its fee in advance, plus the overage (and an in-arrears fee) of `previous`."""
    plan = subscription.plan
    should: list[Charge] = []
    if previous is not None:
        if plan.billing is Billing.IN_ARREARS and not plan.is_free:
            should.append(fee_charge(_whole(subscription, previous)))
        usage = usage_source(uow)(uow.conn, subscription.tenant_id, subscription.id, previous.start, previous.end)
        should += overage_charges(
            plan,
            subscription_id=subscription.id,
            plan_version_id=subscription.plan_version_id,
            period=previous,
            usage=usage,
        )
    if plan.billing is Billing.IN_ADVANCE and not plan.is_free:
        should.append(fee_charge(_whole(subscription, period)))
    return should


def previous_period(subscription: Subscription, period: Period) -> Period | None:
    before = period.start - timedelta(microseconds=1)
    if before < subscription.starts_at or before < subscription.anchor_at:
        return None
    prev = period_at(subscription.anchor_at, subscription.plan.interval, before)
    return (
        Period(max(prev.start, subscription.starts_at), prev.end, prev.index)
        if prev.end > subscription.starts_at
        else None
    )


def bill_period(
    uow: UnitOfWork, subscription: Subscription, period: Period, *, kind: InvoiceKind, now: datetime, cause: str
) -> Issued | None:
    """Bill a subscription's period start: the first invoice, or a renewal."""
    if subscription.status is Status.TRIALING or subscription.status is Status.UPCOMING:
        return None
    key, should = _period_should(uow, subscription, period, kind)
    return bill(uow, tenant_id=subscription.tenant_id, subscription_id=subscription.id, kind=kind, billing_key=key,
                period=period, should=should, subscription_ids=[subscription.id], now=now, cause=cause)


@dataclass(frozen=True)
class PeriodStart:
    """A subscription's period to bill (`bill_period`'s arguments)."""

    subscription: Subscription
    period: Period
    kind: InvoiceKind
    now: datetime


def bill_periods(uow: UnitOfWork, starts: Sequence[PeriodStart], *, cause: str, collect: bool = True) -> list[Issued]:
    """`bill_period` of many subscriptions at once (the billing run), in their order: the same
    recomputation, with the existing keys and what is billed read in one query each, then `issue_all`."""
    wanted = []
    for start in starts:
        s = start.subscription
        if s.status is Status.TRIALING or s.status is Status.UPCOMING:
            continue
        key, should = _period_should(uow, s, start.period, start.kind)
        wanted.append((start, key, should))
    existing = repo.existing_billing_keys(uow.conn, [(start.subscription.tenant_id, key) for start, key, _ in wanted])
    wanted = [
        (start, key, should) for start, key, should in wanted if (start.subscription.tenant_id, key) not in existing
    ]
    billed = repo.billed_by_subscription(
        uow.conn, [(start.subscription.tenant_id, start.subscription.id) for start, _, _ in wanted]
    )
    drafts = []
    for start, key, should in wanted:
        s = start.subscription
        lines = recompute(should, billed[(s.tenant_id, s.id)])
        if lines:
            drafts.append(Draft(s.tenant_id, s.id, start.kind, key, start.period, tuple(lines), start.now, cause))
    return issue_all(uow, drafts, collect=collect)


def _period_should(
    uow: UnitOfWork, subscription: Subscription, period: Period, kind: InvoiceKind
) -> tuple[str, list[Charge]]:
    """A period start's billing key and what it should bill."""
    previous = previous_period(subscription, period) if kind is InvoiceKind.RENEWAL else None
    return _key(subscription.id, period.start, kind), period_charges(uow, subscription, period, previous=previous)


def bill_plan_change(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    new: Subscription,
    from_subscription_id: str,
    from_plan_version_id: int,
    old_period: Period,
    new_period: Period,
    change_at: datetime,
    immediate: bool,
    cause: str,
) -> Issued | None:
    """G7: an immediate change is prorated to the second; a change at period end bills the new period."""
    old_plan = plan_for_version(uow.conn, from_plan_version_id)
    should: list[Charge] = []
    if immediate:
        running = _running_segment(
            uow.conn, tenant_id, from_subscription_id, from_plan_version_id, old_plan, old_period
        )
        new_segment = Segment(
            new.id, new.plan_version_id, new.plan, new_period, max(change_at, new_period.start), new_period.end
        )
        if running is not None and running.start <= change_at:
            should += plan_change_charges(running, change_at, new_segment)
        elif not new.plan.is_free:
            should.append(fee_charge(new_segment))
        usage = usage_source(uow)(uow.conn, tenant_id, from_subscription_id, old_period.start, change_at)
        should += overage_charges(
            old_plan,
            subscription_id=from_subscription_id,
            plan_version_id=from_plan_version_id,
            period=old_period,
            usage=usage,
        )
        key = _key(new.id, change_at, InvoiceKind.PRORATION)
        kind = InvoiceKind.PRORATION
    else:
        usage = usage_source(uow)(uow.conn, tenant_id, from_subscription_id, old_period.start, old_period.end)
        should += overage_charges(
            old_plan,
            subscription_id=from_subscription_id,
            plan_version_id=from_plan_version_id,
            period=old_period,
            usage=usage,
        )
        if not new.plan.is_free and new.plan.billing is Billing.IN_ADVANCE:
            should.append(fee_charge(_whole(new, new_period)))
        key = _key(new.id, new_period.start, InvoiceKind.RENEWAL)
        kind = InvoiceKind.RENEWAL
    return bill(
        uow,
        tenant_id=tenant_id,
        subscription_id=new.id,
        kind=kind,
        billing_key=key,
        period=new_period,
        should=should,
        subscription_ids=sorted({new.id, from_subscription_id}),
        now=change_at,
        cause=cause,
    )


def _running_segment(
    conn: Connection, tenant_id: str, subscription_id: str, plan_version_id: int, plan: Plan, period: Period
) -> Segment | None:
    """The segment of `period` billed last for the old subscription (the one a change cuts)."""
    lines = repo.fee_lines(conn, tenant_id, subscription_id, period.start)
    starts: dict[str, datetime] = {}
    sums: dict[str, int] = {}
    versions: dict[str, int] = {}
    for line in lines:
        key = line["key"]
        starts[key] = min(starts.get(key, line["service_start_at"]), line["service_start_at"])
        sums[key] = sums.get(key, 0) + line["amount_minor"]
        versions[key] = line["plan_version_id"]
    live = [k for k in starts if sums[k] != 0 and versions[k] == plan_version_id]
    if not live:
        return None
    key = max(live, key=lambda k: starts[k])
    return Segment(subscription_id, plan_version_id, plan, period, starts[key], period.end)


# -- listeners --------------------------------------------------------------------


def _at(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _load(uow: UnitOfWork, tenant_id: str, subscription_id: str | None) -> Subscription | None:
    if subscription_id is None:
        return None
    return subscriptions_repo.get(uow.conn, tenant_id, subscription_id)


@signals.on("subscription.started")
def on_started(uow: UnitOfWork, signal: Signal) -> None:
    """G13: a paid plan's first period is invoiced in advance when it starts."""
    subscription = _load(uow, signal.tenant_id, signal.subject)
    if subscription is None or signal.data.get("status") == Status.TRIALING.value:
        return
    period = Period(_at(signal.data["period_start"]), _at(signal.data["period_end"]), 0)
    bill_period(
        uow,
        subscription,
        period,
        kind=InvoiceKind.SUBSCRIPTION,
        now=signal.at,
        cause=f"signal subscription.started {signal.subject}",
    )


@signals.on("subscription.renewed")
def on_renewed(uow: UnitOfWork, signal: Signal) -> None:
    """G13: the new period's fee in advance; the ended period's overage in arrears (L8, A8)."""
    subscription = _load(uow, signal.tenant_id, signal.subject)
    if subscription is None:
        return
    period = Period(_at(signal.data["period_start"]), _at(signal.data["period_end"]), 0)
    bill_period(
        uow,
        subscription,
        period,
        kind=InvoiceKind.RENEWAL,
        now=signal.at,
        cause=f"signal subscription.renewed {signal.subject}",
    )


@signals.on("subscription.plan_changed")
def on_plan_changed(uow: UnitOfWork, signal: Signal) -> None:
    """G7: proration to the second on an immediate change; the new plan's fee at a period-end change."""
    new = _load(uow, signal.tenant_id, signal.subject)
    if new is None:
        return
    d = signal.data
    bill_plan_change(
        uow,
        tenant_id=signal.tenant_id,
        new=new,
        from_subscription_id=str(d["from_subscription_id"]),
        from_plan_version_id=int(d["from_plan_version_id"]),
        old_period=Period(_at(d["old_period_start"]), _at(d["old_period_end"]), 0),
        new_period=Period(_at(d["new_period_start"]), _at(d["new_period_end"]), 0),
        change_at=signal.at,
        immediate=bool(d.get("immediate")),
        cause=f"signal subscription.plan_changed {d['from_subscription_id']} -> {signal.subject}",
    )
