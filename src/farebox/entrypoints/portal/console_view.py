"""Presentation helpers of the operator console: MRR per tenant and usage in one line."""

from __future__ import annotations

from typing import Any

from farebox.domain.money import Money
from farebox.domain.periods import Interval
from farebox.domain.subscriptions import Status, Subscription
from farebox.services.usage import UsageSummary

PAYING = (Status.ACTIVE, Status.PAYMENT_ISSUE, Status.CANCELLATION_SCHEDULED)


def monthly_recurring(sub: Subscription | None) -> Money | None:
    """MRR of a live paid subscription: the monthly price, or the annual price / 12 (half-up)."""
    if sub is None or sub.status not in PAYING or sub.plan.is_free:
        return None
    price = sub.plan.price
    if sub.plan.interval is Interval.YEAR:
        return Money((price.amount_minor * 2 + 12) // 24, price.currency)
    return price


def mrr_rows(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Each row gets its `mrr`; totals per currency (formatted)."""
    totals: dict[str, Money] = {}
    for row in rows:
        mrr = monthly_recurring(row["subscription"])
        row["mrr"] = mrr
        if mrr is not None:
            totals[mrr.currency] = totals.get(mrr.currency, Money.zero(mrr.currency)) + mrr
    return rows, {c: m.format() for c, m in sorted(totals.items())}


def usage_line(summary: UsageSummary) -> str:
    """e.g. "sessions 8 / 600" for period pools; occurrence caps are per event, not shown."""
    parts = [
        f"{m.meter} {m.used:,}" + (f" / {m.limit:,}" if m.limit is not None else "")
        for m in summary.meters
        if m.scope == "period"
    ]
    return ", ".join(parts) or "—"
