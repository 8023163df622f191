"""Payment steps (G9, A7): the tenant's card starts declining, or a card that pays replaces it.

Both go through `services.payments.add_payment_method`, as the portal's
*Update card* does: the new default card is tried at once on every open
invoice, and later charges (renewals, dunning retries) use it.
"""

from __future__ import annotations

from farebox.adapters.payments.sandbox import FAILS_LATER, SUCCEEDS
from farebox.scenarios.context import Answer, Context, step
from farebox.scenarios.document import Step
from farebox.domain.access import SYSTEM
from farebox.services import credits, invoices, payments


def _use_card(ctx: Context, s: Step, card: str) -> Answer:
    tenant_id = ctx.tenant(s)
    actor = ctx.actor(s, tenant_id)
    method = payments.add_payment_method(ctx.fb, actor, tenant_id, token=card)
    open_invoices = invoices.list_invoices(ctx.fb, actor, tenant_id, status="open")
    return {"ok": True, "card": f"{method.brand} {method.last4}", "open_invoices": len(open_invoices)}


@step("payment_fails")
def _payment_fails(ctx: Context, s: Step) -> Answer:
    """`- payment_fails: {tenant: acme}`: from now on every charge is declined (sandbox card 4000 0000 0000 0341);
    open invoices are retried at once and fail, and the next renewal's charge fails (G9)."""
    return _use_card(ctx, s, FAILS_LATER)


@step("payment_succeeds")
def _payment_succeeds(ctx: Context, s: Step) -> Answer:
    """`- payment_succeeds: {tenant: acme}`: a card that pays (4242 4242 4242 4242); open invoices are paid at once."""
    return _use_card(ctx, s, SUCCEEDS)


@step("refund_credit")
def _refund_credit(ctx: Context, s: Step) -> Answer:
    """`- refund_credit: {tenant: acme}`: the operator pays the tenant's credit balance back to its card
    (issue 14 #5); `amount_minor:` refunds part of it."""
    tenant_id = ctx.tenant(s)
    actor = ctx.actor(s, tenant_id) if "as" in s.args else SYSTEM
    done = credits.refund_credit(ctx.fb, actor, tenant_id, amount_minor=s.args.get("amount_minor"))
    return {"ok": True, "refunds": [f"{r.amount.format()} {r.status}" for r in done]}
