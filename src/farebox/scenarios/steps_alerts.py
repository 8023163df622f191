"""Alert channel steps (G12): the operator's webhook endpoints and channel switches.

Nothing is sent during a scenario: alerts wait in the outbox, and
`check: {deliveries: {email: N, webhook: N}}` counts what is owed per channel.
"""

from __future__ import annotations

from farebox.alerts.services import notifications, webhook_endpoints
from farebox.kernel.access import SYSTEM
from farebox.scenarios.context import Answer, Context, step
from farebox.scenarios.document import Step


@step("webhook")
def _webhook(ctx: Context, s: Step) -> Answer:
    """`- webhook: {url: https://hooks.example/billing, kinds: [usage_threshold]}`: an operator endpoint (every kind
    by default)."""
    endpoint = webhook_endpoints.create_endpoint(
        ctx.fb, SYSTEM, url=str(ctx.required(s, "url")), kinds=tuple(s.args.get("kinds") or ())
    )
    return {"ok": True, "id": endpoint.id}


@step("channel")
def _channel(ctx: Context, s: Step) -> Answer:
    """`- channel: {channel: email, enabled: false}` for the operator, or with `tenant: acme` for one tenant (as its
    owner)."""
    tenant_id = ctx.tenant(s) if "tenant" in s.args else None
    actor = ctx.actor(s, tenant_id) if tenant_id else SYSTEM
    switches = notifications.set_channel(
        ctx.fb,
        actor,
        channel=str(ctx.required(s, "channel")),
        enabled=bool(ctx.required(s, "enabled")),
        tenant_id=tenant_id,
    )
    return {"ok": True, **switches}
