"""Payment steps (G9, A7): the tenant's card starts declining, or a card that pays replaces it;
the operator voids an invoice.

Both go through `payments.service.add_payment_method`, as the portal's
*Update card* does: the new default card is tried at once on every open
invoice, and later charges (renewals, dunning retries) use it.
"""

from __future__ import annotations

from farebox.invoicing.services import credits, invoices
from farebox.kernel.access import SYSTEM
from farebox.payments import service as payments
from farebox.payments.providers.sandbox import FAILS_LATER, SUCCEEDS
from farebox.scenarios.context import Answer, Context, step
from farebox.scenarios.document import Step


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


@step("void")
def _void(ctx: Context, s: Step) -> Answer:
    """`- void: {tenant: acme, invoice: last, reason: goodwill}`: the operator voids an open invoice
    (`last`: the tenant's latest, or an invoice number), saying why (G9)."""
    tenant_id = ctx.tenant(s)
    wanted, reason = str(ctx.required(s, "invoice")), str(ctx.required(s, "reason"))
    found = invoices.list_invoices(ctx.fb, SYSTEM, tenant_id)
    chosen = found[0] if wanted == "last" and found else next((i for i in found if i.number == wanted), None)
    if chosen is None or chosen.id is None:
        raise ctx.error(s, f"no invoice {wanted!r} for {tenant_id}")
    voided = invoices.void_invoice(
        ctx.fb, ctx.actor(s, tenant_id) if "as" in s.args else SYSTEM, tenant_id, chosen.id, reason=reason
    )
    return {"ok": True, "number": voided.number, "status": voided.status, "total": voided.total.format()}


@step("refund_credit")
def _refund_credit(ctx: Context, s: Step) -> Answer:
    """`- refund_credit: {tenant: acme}`: the operator pays the tenant's credit balance back to its card;
    `amount_minor:` refunds part of it."""
    tenant_id = ctx.tenant(s)
    actor = ctx.actor(s, tenant_id) if "as" in s.args else SYSTEM
    done = credits.refund_credit(ctx.fb, actor, tenant_id, amount_minor=s.args.get("amount_minor"))
    return {"ok": True, "refunds": [f"{r.amount.format()} {r.status}" for r in done]}
