"""Subscription steps: plan changes, cancellation, the tenant's own session limit, sales requests
(G7, G8, A5, A6, L9, L11), as the tenant's owner by default (`as:` to call as someone else)."""

from __future__ import annotations

from typing import Any

from farebox.metering.services import usage
from farebox.scenarios.context import Answer, Context, instant, iso, step
from farebox.scenarios.document import Step
from farebox.subscriptions.domain.states import Subscription
from farebox.subscriptions.services import subscriptions


def _sub(sub: Subscription) -> Answer:
    return {"ok": True, "status": str(sub.status), "plan": sub.plan.code, "catalog": sub.catalog}


def _when(ctx: Context, s: Step) -> Any:
    when = s.args.get("when")
    if when is None or when in ("immediately", "end_of_period"):
        return when
    try:
        return instant(when)
    except ValueError:
        raise ctx.error(s, f"`when` is immediately, end_of_period or a date, not {when!r}") from None


@step("change_plan")
def _change_plan(ctx: Context, s: Step) -> Answer:
    """`- change_plan: {tenant: acme, plan: enterprise, when: immediately}` (end_of_period | a date;
    default: upgrades now, downgrades at period end; `catalog: other` moves to another catalog, L11)."""
    tenant_id = ctx.tenant(s)
    change = subscriptions.change_plan(ctx.fb, ctx.actor(s, tenant_id), tenant_id, plan=str(ctx.required(s, "plan")),
                                       catalog=s.args.get("catalog"), when=_when(ctx, s))
    answer = {**_sub(change.subscription), "immediate": change.immediate, "upgrade": change.upgrade}
    if change.upcoming is not None:
        answer.update(upcoming=change.upcoming.plan.code, starts_at=iso(change.upcoming.starts_at))
    return answer


@step("preview_change")
def _preview_change(ctx: Context, s: Step) -> Answer:
    """`- preview_change: {tenant: acme, catalog: attendee-credits, plan: pro}`: what a change would cost (L11)."""
    tenant_id = ctx.tenant(s)
    p = subscriptions.preview_change(
        ctx.fb,
        ctx.actor(s, tenant_id),
        tenant_id,
        catalog=str(s.args.get("catalog", ctx.catalog)),
        plan=str(ctx.required(s, "plan")),
    )
    return {
        "ok": True,
        "from": f"{p.from_catalog}/{p.from_plan}",
        "to": f"{p.to_catalog}/{p.to_plan}",
        "from_price": p.from_price,
        "to_price": p.to_price,
        "upgrade": p.upgrade,
        "default_when": p.default_when,
        "currency_changes": p.currency_changes,
        "credit_minor": p.credit_minor,
        "charge_minor": p.charge_minor,
        "due_now_minor": p.due_now_minor,
        "limits_after": {lim.meter: lim.included for lim in p.limits_after},
        "requires_sales": p.requires_sales,
        "features_added": p.features_added,
        "features_removed": p.features_removed,
    }


@step("cancel_change")
def _cancel_change(ctx: Context, s: Step) -> Answer:
    """`- cancel_change: {tenant: acme}`: call off the scheduled (upcoming) change (G7, L9)."""
    tenant_id = ctx.tenant(s)
    return _sub(subscriptions.cancel_scheduled_change(ctx.fb, ctx.actor(s, tenant_id), tenant_id))


@step("cancel")
def _cancel(ctx: Context, s: Step) -> Answer:
    """`- cancel: {tenant: acme}`: cancel at the end of the paid period (G8)."""
    tenant_id = ctx.tenant(s)
    return _sub(subscriptions.cancel(ctx.fb, ctx.actor(s, tenant_id), tenant_id))


@step("reactivate")
def _reactivate(ctx: Context, s: Step) -> Answer:
    """`- reactivate: {tenant: acme}`: undo a cancellation before it takes effect (G8)."""
    tenant_id = ctx.tenant(s)
    return _sub(subscriptions.reactivate(ctx.fb, ctx.actor(s, tenant_id), tenant_id))


@step("request_sales")
def _request_sales(ctx: Context, s: Step) -> Answer:
    """`- request_sales: {tenant: acme, plan: enterprise}`: *Contact sales* (S1) / *Book a demo* (A5)."""
    tenant_id = ctx.tenant(s)
    r = subscriptions.request_sales_contact(
        ctx.fb, ctx.actor(s, tenant_id), tenant_id, plan=str(ctx.required(s, "plan")), catalog=s.args.get("catalog")
    )
    return {"ok": True, "kind": r.kind, "message": r.message}


def _limit(change: usage.SessionLimit) -> Answer:
    return {"ok": True, "meter": change.meter, "before": change.before, "after": change.after, "base": change.base}


@step("set_limit")
def _set_limit(ctx: Context, s: Step) -> Answer:
    """`- set_limit: {tenant: acme, sessions: 100}`: the tenant's own monthly session limit (A6)."""
    tenant_id = ctx.tenant(s)
    return _limit(usage.set_session_limit(ctx.fb, ctx.actor(s, tenant_id), tenant_id, ctx.required(s, "sessions")))


@step("reset_limit")
def _reset_limit(ctx: Context, s: Step) -> Answer:
    """`- reset_limit: {tenant: acme}`: back to the plan's base (A6)."""
    tenant_id = ctx.tenant(s)
    return _limit(usage.reset_session_limit(ctx.fb, ctx.actor(s, tenant_id), tenant_id))
