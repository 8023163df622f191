"""Invoice computation as a recomputation (G1, G7, G13, L8, A8).

What an invoice holds is never accumulated by hand: for a subscription the
core lists the *charges that should have been billed* (each under a stable
key), the storage tells what was *already billed* under each key, and the
difference becomes the new invoice's lines.  Running it twice therefore adds
nothing the second time, and a dry run is the same computation unsaved.

Charges and their keys:

* recurring fee, in advance (G13): ``fee:<subscription>:<period start>:<segment start>``.
  A *segment* is the part of a period spent on one plan; without plan
  changes it is the whole period.  Its amount is the plan's price prorated
  to the second over the segment (the whole price for a whole period).
* immediate plan change (G7): the running segment is cut at the change, so
  what it should have billed falls and the difference is a credit for the
  unused time; the new plan's segment runs from the change to its period's
  end and is charged prorated to the second.
* overage, in arrears (L8, A8): ``overage:<subscription>:<period start>:<meter>``,
  quantity beyond the included units times the unit price, once the period
  has ended.

Line amounts are exact minor units (a prorated amount is rounded once,
half-up); the tax is computed once on the subtotal and rounded once, half-up.

A result whose total is negative (an immediate downgrade's credit) is not an
invoice but a *credit note*: its own document in its own number series, whose
amount goes to the customer's credit balance; the balance is set against the
next invoices when they are issued, before anything is charged
(`settle_with_credit`).  Tenants on a test clock number both in a `TEST-`
series (`number_series`), so the legal series never sees a simulated year.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from farebox.catalog.domain import Plan, Policy
from farebox.kernel.money import Money, prorate, round_half_up
from farebox.kernel.periods import Period, seconds_between

__all__ = [
    "Charge",
    "CreditUse",
    "Document",
    "InvoiceKind",
    "LineKind",
    "Segment",
    "Totals",
    "fee_charge",
    "fee_key",
    "invoice_number",
    "number_series",
    "overage_charges",
    "plan_change_charges",
    "recompute",
    "settle_with_credit",
    "totals",
]


class LineKind(StrEnum):
    FEE = "fee"  # recurring fee in advance
    PRORATION_CREDIT = "proration_credit"  # unused time of a plan left on an immediate change
    PRORATION_CHARGE = "proration_charge"  # the rest of the period on the new plan
    OVERAGE = "overage"  # units beyond the included ones, in arrears


class InvoiceKind(StrEnum):
    SUBSCRIPTION = "subscription"  # the first invoice of a subscription
    RENEWAL = "renewal"  # the next period's fee plus the overage of the period that ended
    PRORATION = "proration"  # an immediate plan change


@dataclass(frozen=True, slots=True)
class Charge:
    """One line that should be billed (or, after `recompute`, that is to be billed now)."""

    key: str
    kind: LineKind
    description: str
    subscription_id: str
    plan_version_id: int
    quantity: int
    unit_amount_minor: int
    amount_minor: int
    currency: str
    period_start_at: datetime  # the billing period it belongs to
    period_end_at: datetime
    service_start_at: datetime  # the time (or usage window) it pays for
    service_end_at: datetime


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of one billing period spent on one plan."""

    subscription_id: str
    plan_version_id: int
    plan: Plan
    period: Period
    start: datetime
    end: datetime


def fee_key(subscription_id: str, period_start: datetime, segment_start: datetime) -> str:
    return f"fee:{subscription_id}:{_stamp(period_start)}:{_stamp(segment_start)}"


def overage_key(subscription_id: str, period_start: datetime, meter: str) -> str:
    return f"overage:{subscription_id}:{_stamp(period_start)}:{meter}"


def _stamp(at: datetime) -> str:
    return at.strftime("%Y%m%dT%H%M%SZ")


def _day(at: datetime) -> str:
    return at.strftime("%Y-%m-%d")


def segment_amount(segment: Segment) -> Money:
    """The plan's price for the segment, prorated to the second over its period."""
    total = seconds_between(segment.period.start, segment.period.end)
    used = seconds_between(segment.start, segment.end)
    return prorate(segment.plan.price, used, total)


def fee_charge(segment: Segment) -> Charge:
    """What a segment should bill: the fee for a whole period, or its prorated part."""
    amount = segment_amount(segment)
    whole = segment.start == segment.period.start and segment.end == segment.period.end
    plan = segment.plan
    if whole:
        description = f"{plan.name} ({plan.interval.value}ly fee), {_day(segment.start)} to {_day(segment.end)}"
        kind = LineKind.FEE
    else:
        description = f"{plan.name}, remaining time {_day(segment.start)} to {_day(segment.end)} (prorated)"
        kind = LineKind.PRORATION_CHARGE
    return Charge(
        key=fee_key(segment.subscription_id, segment.period.start, segment.start),
        kind=kind,
        description=description,
        subscription_id=segment.subscription_id,
        plan_version_id=segment.plan_version_id,
        quantity=1,
        unit_amount_minor=amount.amount_minor,
        amount_minor=amount.amount_minor,
        currency=plan.price.currency,
        period_start_at=segment.period.start,
        period_end_at=segment.period.end,
        service_start_at=segment.start,
        service_end_at=segment.end,
    )


def plan_change_charges(old: Segment, change_at: datetime, new: Segment) -> list[Charge]:
    """An immediate change at `change_at` (G7): the old segment cut there, the new one charged.

    `old` is the segment running before the change (its `end` is where it
    was billed up to, normally its period's end); `new` starts at the change.
    The returned charges are what should be billed under their keys; passed
    to `recompute`, the old key yields a credit for the unused time.
    """
    if not old.start <= change_at <= old.end:
        raise ValueError(f"change at {change_at.isoformat()} is outside the running segment")
    cut = replace(old, end=change_at)
    kept = fee_charge(cut)
    kept = replace(kept, kind=LineKind.PRORATION_CREDIT, service_start_at=change_at, service_end_at=old.end,
                   description=f"Unused time on {old.plan.name} after {_day(change_at)} (credit)")
    return [kept, fee_charge(new)]


def overage_charges(
    plan: Plan, *, subscription_id: str, plan_version_id: int, period: Period, usage: Mapping[str, int]
) -> list[Charge]:
    """Units beyond the included ones, for meters whose policy is `overage` (L8, A8)."""
    charges = []
    for limit in plan.limits:
        if limit.policy is not Policy.OVERAGE or limit.overage_unit_price is None or limit.included is None:
            continue
        used = int(usage.get(limit.meter, 0))
        extra = max(0, used - limit.included)
        unit = limit.overage_unit_price
        charges.append(
            Charge(
                key=overage_key(subscription_id, period.start, limit.meter),
                kind=LineKind.OVERAGE,
                description=f"{limit.meter}: {extra} beyond the {limit.included} included ({used} used), "
                            f"{_day(period.start)} to {_day(period.end)}",
                subscription_id=subscription_id,
                plan_version_id=plan_version_id,
                quantity=extra,
                unit_amount_minor=unit.amount_minor,
                amount_minor=(unit * extra).amount_minor,
                currency=unit.currency,
                period_start_at=period.start,
                period_end_at=period.end,
                service_start_at=period.start,
                service_end_at=period.end,
            )
        )
    return charges


def recompute(should: Iterable[Charge], billed: Mapping[str, int]) -> list[Charge]:
    """Lines to bill now: for each key, what should be billed minus what was billed.

    A key billed already in full yields nothing, so running it again is safe.
    A difference of the opposite sign to the charge (a cut segment) is a
    credit line.  Zero-amount lines are dropped, except that an overage
    line is kept only when it has something to bill.
    """
    out: list[Charge] = []
    for charge in should:
        already = billed.get(charge.key, 0)
        diff = charge.amount_minor - already
        if diff == 0:
            continue
        if charge.key in billed:
            # a correction of a key billed before (a cut segment: a credit)
            out.append(replace(charge, quantity=1, unit_amount_minor=diff, amount_minor=diff))
        else:
            out.append(charge)
    return out


@dataclass(frozen=True, slots=True)
class Totals:
    subtotal: Money
    tax: Money
    total: Money
    tax_rate_bp: int


def totals(lines: Sequence[Charge], *, currency: str, tax_rate_bp: int = 0) -> Totals:
    """Subtotal of exact line amounts; tax on it rounded once half-up (basis points: 2000 = 20%)."""
    if isinstance(tax_rate_bp, bool) or not isinstance(tax_rate_bp, int) or tax_rate_bp < 0:
        raise ValueError(f"tax rate must be a non-negative int in basis points, got {tax_rate_bp!r}")
    subtotal = Money.zero(currency)
    for line in lines:
        subtotal = subtotal + Money(line.amount_minor, line.currency)
    tax = round_half_up(subtotal.to_decimal() * Decimal(tax_rate_bp) / Decimal(10_000), currency)
    return Totals(subtotal, tax, subtotal + tax, tax_rate_bp)


def invoice_number(pattern: str, *, issuer: str, year: int, sequence: int) -> str:
    """``FB-2026-000123`` from the default pattern ``{issuer}-{year}-{seq:06d}``."""
    return pattern.format(issuer=issuer, year=year, seq=sequence)


class Document(StrEnum):
    INVOICE = "invoice"  # something to pay
    CREDIT_NOTE = "credit_note"  # a negative result: credited to the customer's balance


def document_for(total_minor: int) -> Document:
    return Document.CREDIT_NOTE if total_minor < 0 else Document.INVOICE


def number_series(issuer: str, document: Document, *, test_clock: bool) -> str:
    """The series a document is numbered in (G13): the issuer's invoices, its credit notes
    (`<issuer>-CN`), and the same two with a `TEST-` prefix for tenants on a test clock."""
    series = f"{issuer}-CN" if document is Document.CREDIT_NOTE else issuer
    return f"TEST-{series}" if test_clock else series


@dataclass(frozen=True, slots=True)
class CreditUse:
    """What a document does to the customer's credit balance, and what is left to charge."""

    credited_minor: int  # added to the balance (a credit note's amount)
    applied_minor: int  # taken from the balance and set against the invoice's total
    amount_due_minor: int  # the total less the credit applied: what the payment charges

    def balance_change(self) -> int:
        return self.credited_minor - self.applied_minor


def settle_with_credit(total_minor: int, balance_minor: int) -> CreditUse:
    """A credit note's total goes to the balance; an invoice takes from the balance as much as it can
    (never more than its total, never below a zero balance) and leaves the rest due."""
    if total_minor < 0:
        return CreditUse(-total_minor, 0, 0)
    applied = min(total_minor, max(balance_minor, 0))
    return CreditUse(0, applied, total_minor - applied)


def split_refund(amount_minor: int, refundable: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """Refund `amount_minor` against charges `(id, what is left to refund)` given newest first: all of
    it against the newest charge that can hold it, else spread from the newest on; less than asked
    when the charges cannot hold it all."""
    whole = next((charge_id for charge_id, room in refundable if room >= amount_minor), None)
    if whole is not None:
        return [(whole, amount_minor)] if amount_minor > 0 else []
    out: list[tuple[str, int]] = []
    left = amount_minor
    for charge_id, room in refundable:
        if left <= 0:
            break
        take = min(left, room)
        if take > 0:
            out.append((charge_id, take))
            left -= take
    return out
