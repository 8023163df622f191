"""`check:` — what the tenant's owner would see now, read through the same services as the
Billing tab and the API: the subscription card (G11), usage this period, alerts, invoices.

Only the keys the check names are compared; every key is a figure the portal
or the API shows.  Mappings compare the keys they name (`usage: {credits: 3}`),
lists compare whole and in order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from farebox.alerts.services import delivery, notifications
from farebox.alerts.services.notifications import Notification
from farebox.invoicing.services import credits, invoices
from farebox.invoicing.services.invoices import Invoice
from farebox.kernel.access import SYSTEM
from farebox.kernel.money import Money
from farebox.metering.services import usage
from farebox.records.services import audit
from farebox.scenarios.context import Answer, Context, iso, step
from farebox.scenarios.document import ScenarioError, Step
from farebox.subscriptions.services import subscriptions

NOT_CHECKED = frozenset({"tenant", "as"})


def notification_label(n: Notification) -> str:
    """An alert as a scenario names it: `credits_80`, `session_limit_100`, `trial_usage_60`, `trial_days_left_7`, or
    its kind."""
    d = n.data
    if n.kind == "usage_threshold":
        return f"{d.get('meter')}_{d.get('percent')}"
    if n.kind in ("session_limit", "trial_usage"):
        return f"{n.kind}_{d.get('percent')}"
    if n.kind == "trial_days_left":
        return f"trial_days_left_{d.get('days')}"
    return n.kind


def _plain(obj: Any) -> dict[str, Any]:
    return {k: iso(v) for k, v in asdict(obj).items()}


class _Reads:
    """Each read once per check, on demand."""

    def __init__(self, ctx: Context, s: Step, tenant_id: str) -> None:
        self.ctx, self.tenant_id, self.actor, self.step = ctx, tenant_id, ctx.actor(s, tenant_id), s
        self._cache: dict[str, Any] = {}

    def _once(self, key: str, read: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = read()
        return self._cache[key]

    def wanted(self, key: str) -> list[Any]:
        return list(self.step.args.get(key) or [])

    def cards(self) -> Any:
        return self._once("cards", lambda: subscriptions.cards(self.ctx.fb, self.actor, self.tenant_id))

    def usage(self) -> usage.UsageSummary:
        return self._once("usage", lambda: usage.usage_summary(self.ctx.fb, self.actor, self.tenant_id))

    def per_meter(self, field: str) -> dict[str, Any]:
        return {m.meter: getattr(m, field) for m in self.usage().meters}

    def alerts(self) -> list[Notification]:
        return self._once("alerts", lambda: notifications.all_alerts(self.ctx.fb, self.actor, self.tenant_id))

    def invoices(self) -> list[Invoice]:
        return self._once(
            "invoices", lambda: list(reversed(invoices.list_invoices(self.ctx.fb, self.actor, self.tenant_id)))
        )

    def audit(self) -> list[str]:
        """The tenant's audit entries, oldest first, as `<kind> by <actor>: <reason>` (the reason if any)."""
        entries = self._once(
            "audit",
            lambda: list(reversed(audit.entries(self.ctx.fb, self.actor, tenant_id=self.tenant_id, limit=10_000))),
        )
        return [
            f"{e['kind']} by {e['actor']}" + (f": {e['data']['reason']}" if e["data"].get("reason") else "")
            for e in entries
        ]

    def currency(self) -> str:
        card = self.cards().subscription
        return card.currency if card is not None else "USD"

    def credit_notes(self) -> list[Invoice]:
        def read() -> list[Invoice]:
            notes = invoices.list_invoices(self.ctx.fb, self.actor, self.tenant_id, document="credit_note")
            return list(reversed(notes))

        return self._once("credit_notes", read)

    def credit_balance(self) -> str:
        balance = self._once("credit", lambda: credits.credit_balance(self.ctx.fb, self.actor, self.tenant_id))
        return str(balance.of(self.currency()).format())

    def amount_due(self) -> str:
        due = [i.amount_due or i.total for i in self.invoices() if i.status == "open"]
        return sum(due[1:], due[0]).format() if due else Money(0, self.currency()).format()

    def top(self, kind: str) -> dict[str, int]:
        top = usage.top_usage(self.ctx.fb, self.actor, self.tenant_id, 100, this_period=False)  # the event data
        return {t.id: t.units for t in top if t.kind == kind}


def _last_invoice(r: _Reads) -> Any:
    if not r.invoices():
        return None
    i = r.invoices()[-1]
    return {
        "kind": i.kind,
        "status": i.status,
        "total": i.total.format(),
        "number": i.number,
        "credit_applied": i.credit_applied.format() if i.credit_applied else None,
        "amount_due": i.amount_due.format() if i.amount_due else None,
        "lines": [
            f"{line.kind}: {line.quantity} x {line.unit_amount.format()} = {line.amount.format()}" for line in i.lines
        ],
    }


READS: dict[str, Callable[[_Reads], Any]] = {
    "badge": lambda r: r.cards().subscription.badge if r.cards().subscription else None,
    "status": lambda r: r.cards().subscription.status if r.cards().subscription else None,
    "plan": lambda r: r.cards().subscription.plan if r.cards().subscription else None,
    "card": lambda r: _plain(r.cards().subscription) if r.cards().subscription else None,
    "upcoming": lambda r: _plain(r.cards().upcoming) if r.cards().upcoming else None,
    "usage": lambda r: r.per_meter("used"),
    "left": lambda r: r.per_meter("left"),
    "limit": lambda r: r.per_meter("limit"),
    "included": lambda r: r.per_meter("included"),
    "overage": lambda r: r.per_meter("overage"),
    "carried_in": lambda r: r.per_meter("carried_in"),
    "period": lambda r: {"start": iso(r.usage().period_start), "end": iso(r.usage().period_end)},
    "notifications": lambda r: [notification_label(n) for n in r.alerts()],
    "notifications_include": lambda r: [
        n for n in map(notification_label, r.alerts()) if n in r.wanted("notifications_include")
    ],
    "notifications_absent": lambda r: [
        n for n in r.wanted("notifications_absent") if n not in set(map(notification_label, r.alerts()))
    ],
    "notification_titles": lambda r: [n.title for n in r.alerts()],
    "deliveries": lambda r: dict(
        Counter(d.channel for d in delivery.list_deliveries(r.ctx.fb, r.actor, tenant_id=r.tenant_id, limit=10_000))
    ),
    "invoices": lambda r: len(r.invoices()),
    "invoice_totals": lambda r: [i.total.format() for i in r.invoices()],
    "invoice_numbers": lambda r: [i.number for i in r.invoices()],
    "invoice_statuses": lambda r: [i.status for i in r.invoices()],
    "audit_includes": lambda r: [e for e in r.audit() if e in r.wanted("audit_includes")],
    "last_invoice": _last_invoice,
    "amount_due": lambda r: r.amount_due(),
    "credit_notes": lambda r: [f"{c.number}: {c.total.format()}" for c in r.credit_notes()],
    "credit_balance": lambda r: r.credit_balance(),
    "credits_match": lambda r: credits.verify(r.ctx.fb, SYSTEM, r.tenant_id) == [],
    "occurrences": lambda r: r.top("occurrence"),
    "conversations": lambda r: r.top("conversation"),
    "ledger_matches": lambda r: usage.verify(r.ctx.fb, SYSTEM, r.tenant_id) == [],
    "transitions": lambda r: [t.to_status for t in subscriptions.transitions(r.ctx.fb, r.actor, r.tenant_id)],
}


def expectation(s: Step, source: str) -> dict[str, Any]:
    """A check's expectation is its own keys (but `tenant` and `as`), plus any `expect` of other keys (an
    `expect` that overrode a key the check names would read as the opposite of what it checks)."""
    own = {k: v for k, v in s.args.items() if k not in NOT_CHECKED}
    both = sorted(set(own) & set(s.expect))
    if both:
        raise ScenarioError(source, s.line, f"check names {', '.join(both)} and its expect overrides it: say it once")
    return {**own, **s.expect}


@step("check")
def _check(ctx: Context, s: Step) -> Answer:
    """`- check: {tenant: acme, badge: Payment issue, usage: {credits: 500}, ...}`: see docs/scenarios.md."""
    tenant_id = ctx.tenant(s)
    unknown = set(s.args) - NOT_CHECKED - set(READS)
    if unknown:
        raise ctx.error(s, f"check cannot read {', '.join(sorted(unknown))}; it reads {', '.join(READS)}")
    reads = _Reads(ctx, s, tenant_id)
    reads.cards()  # owners and admins only (G6): a refusal answers before any figure
    return {"ok": True, **{key: READS[key](reads) for key in s.args if key not in NOT_CHECKED}}
