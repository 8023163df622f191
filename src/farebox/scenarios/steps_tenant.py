"""Steps about tenants, their team and the scenario's test clock (G2, G6)."""

from __future__ import annotations

from farebox.clocks import service as clocks
from farebox.kernel.access import SYSTEM, Principal, Role
from farebox.kernel.periods import parse_duration
from farebox.payments import service as payments
from farebox.payments.providers.sandbox import SUCCEEDS
from farebox.scenarios.context import Answer, Context, instant, iso, step
from farebox.scenarios.document import Step
from farebox.subscriptions.services import subscriptions
from farebox.tenants.services import tenants


@step("tenant")
def _tenant(ctx: Context, s: Step) -> Answer:
    """`- tenant: acme` (+ `plan: pro`, `trial: true`, `card: 4000000000000341` or `card: none`): a tenant
    with an owner on the scenario's clock, a sandbox card (by default one that always pays), subscribed."""
    tenant_id = str(s.args["value"])
    tenants.create_tenant(ctx.fb, SYSTEM, tenant_id=tenant_id, name=tenant_id, owner_email=f"owner@{tenant_id}.example")
    clocks.attach(ctx.fb, SYSTEM, ctx.clock_id, tenant_id)
    ctx.tenants.add(tenant_id)
    card = str(s.extra.get("card", SUCCEEDS)).replace(" ", "")
    if card.lower() != "none":
        payments.add_payment_method(ctx.fb, ctx.owner(tenant_id), tenant_id, token=card)
    answer: Answer = {"ok": True, "tenant": tenant_id}
    if "plan" in s.extra:
        answer.update(
            subscribe(
                ctx,
                tenant_id,
                str(s.extra["plan"]),
                trial=bool(s.extra.get("trial", False)),
                catalog=s.extra.get("catalog"),
            )
        )
    return answer


def subscribe(
    ctx: Context, tenant_id: str, plan: str, *, trial: bool, catalog: str | None = None, actor: Principal | None = None
) -> Answer:
    sub = subscriptions.subscribe(
        ctx.fb, actor or ctx.owner(tenant_id), tenant_id, catalog=catalog or ctx.catalog, plan=plan, trial=trial
    )
    return {"ok": True, "status": str(sub.status), "plan": sub.plan.code, "trial_ends_at": iso(sub.trial_ends_at)}


@step("subscribe")
def _subscribe(ctx: Context, s: Step) -> Answer:
    """`- subscribe: {tenant: acme, plan: sme, trial: true}`: start a plan (again) for an existing tenant (A4)."""
    tenant_id = ctx.tenant(s)
    return subscribe(ctx, tenant_id, str(ctx.required(s, "plan")), trial=bool(s.args.get("trial", False)),
                     catalog=s.args.get("catalog"), actor=ctx.actor(s, tenant_id))


@step("member")
def _member(ctx: Context, s: Step) -> Answer:
    """`- member: {tenant: acme, email: ann@acme.example, role: admin}`: a person of the tenant's team (G5, G6)."""
    tenant_id = ctx.tenant(s)
    role = Role(str(s.args.get("role", "member")))
    member = tenants.add_member(
        ctx.fb, ctx.actor(s, tenant_id), tenant_id, email=str(ctx.required(s, "email")), role=role
    )
    return {"ok": True, "id": member["id"], "role": member["role"]}


def _report(ctx: Context, report: clocks.AdvanceReport) -> Answer:
    ctx.fb.clock.set(clocks.get(ctx.fb, SYSTEM, ctx.clock_id)["now_at"])  # type: ignore[attr-defined]
    return {
        "ok": True,
        "now": report.to_at.isoformat(),
        "processed": [f"{p.kind}: {p.outcome}" for p in report.processed],
    }


@step("advance")
def _advance(ctx: Context, s: Step) -> Answer:
    """`- advance: 36h` (s, m, h, d; `1d12h`): everything due in between runs in order (G2)."""
    try:
        by = parse_duration(str(s.args["value"]))
    except ValueError as exc:
        raise ctx.error(s, str(exc)) from None
    return _report(ctx, clocks.advance(ctx.fb, SYSTEM, ctx.clock_id, by=by))


@step("at")
def _at(ctx: Context, s: Step) -> Answer:
    """`- at: 2026-02-01T00:00:00Z`: advance the clock to this instant."""
    try:
        target = instant(s.args["value"])
    except ValueError:
        raise ctx.error(s, f"`at` needs an ISO date-time, not {s.args['value']!r}") from None
    return _report(ctx, clocks.advance(ctx.fb, SYSTEM, ctx.clock_id, to=target))
