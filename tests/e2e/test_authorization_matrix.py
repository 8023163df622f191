"""The authorization matrix (G6, G15, issue 9): every API endpoint and every
portal action, called as each kind of caller.

Callers: no key, a wrong key, a revoked and an expired operator key (and the
portal sessions opened with them; issue 17, F9), the operator, the target
tenant's owner, admin and member, and the owner of another tenant.  The allowed ones succeed (2xx,
or a portal redirect that is not to the sign-in page); every other one is
401/403/404 (a portal page sends the signed-out to the sign-in page) and
changes nothing in the database.  An endpoint without a row fails the test,
so a new endpoint cannot ship without saying who may call it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from farebox.clocks import service as clocks
from farebox.entrypoints.api.app import create_app
from farebox.entrypoints.portal.web import SESSION_COOKIE
from farebox.invoicing.services import invoices
from farebox.kernel.access import SYSTEM, Principal, Role
from farebox.payments import service as payments
from farebox.storage.tables import metadata
from farebox.subscriptions.services import subscriptions
from farebox.tenants.services import sign_in as portal_auth
from farebox.tenants.services import tenants

CALLERS = ("none", "wrong", "revoked", "expired", "operator", "owner", "admin", "member", "other_owner")
UNAUTHENTICATED = ("none", "wrong", "revoked", "expired")
EVERYONE = frozenset(CALLERS)
OPERATOR = frozenset({"operator"})
BILLING = frozenset({"operator", "owner", "admin"})
TEAM = frozenset({"operator", "owner", "admin", "member"})
SIGNED_IN = frozenset({"operator", "owner", "admin", "member", "other_owner"})
_unique = itertools.count()


@dataclass
class World:
    """Two tenants with a key and a portal session per role, a test clock."""

    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    sessions: dict[str, portal_auth.PortalSession] = field(default_factory=dict)
    clock_id: str = ""
    ids: dict[str, str] = field(
        default_factory=lambda: {"occurrence_id": "o1", "conversation_id": "c1", "feature": "cohosts"}
    )  # ids a row's path uses


def build_world(fb) -> World:
    world = World()
    for tenant_id in ("acme", "other"):
        tenants.create_tenant(fb, SYSTEM, tenant_id=tenant_id, name=tenant_id, owner_email=f"owner@{tenant_id}.test")
        payments.add_payment_method(fb, SYSTEM, tenant_id, token="4242424242424242")  # paid plans need one (D2)
    for role in (Role.ADMIN, Role.MEMBER):
        tenants.add_member(fb, SYSTEM, "acme", email=f"{role.value}@acme.test", role=role)
    world.headers = {
        "none": {},
        "wrong": {"Authorization": "Bearer fbk_nope.wrong-secret"},
        "operator": {"Authorization": "Bearer test-operator-key"},
        "other_owner": _key(fb, "other", Role.OWNER),
        **{role.value: _key(fb, "acme", role) for role in (Role.OWNER, Role.ADMIN, Role.MEMBER)},
    }
    world.sessions = {
        "operator": portal_auth._open_session(fb, Principal(Role.OPERATOR, email="operator")),
        "other_owner": portal_auth._open_session(
            fb, Principal(Role.OWNER, tenant_id="other", email="owner@other.test")
        ),
        **{
            role.value: portal_auth._open_session(
                fb, Principal(role, tenant_id="acme", email=f"{role.value}@acme.test")
            )
            for role in (Role.OWNER, Role.ADMIN, Role.MEMBER)
        },
    }
    for caller in ("revoked", "expired"):  # F9: refused at once, and so are the portal sessions opened with them
        issued = tenants.issue_api_key(fb, SYSTEM, tenant_id=None, role=Role.OPERATOR, name=caller)
        world.headers[caller] = {"Authorization": f"Bearer {issued.secret}"}
        world.sessions[caller] = portal_auth.operator_sign_in(fb, issued.secret)
        if caller == "revoked":
            tenants.revoke_api_key(fb, SYSTEM, issued.key_id)
        else:
            with fb.uow() as uow:
                tenants.repo.update_api_key(uow.conn, issued.key_id, expires_at=fb.clock.now())
                uow.commit()
            # the row changed behind the service's back: forget this process's cached keys, as the service does
            tenants._auth_cache.pop(fb.engine, None)
    world.ids["key_id"] = tenants.issue_api_key(fb, SYSTEM, tenant_id="acme", role=Role.MEMBER, name="to manage").key_id
    world.ids["operator_key_id"] = tenants.issue_api_key(
        fb, SYSTEM, tenant_id=None, role=Role.OPERATOR, name="to manage"
    ).key_id
    world.clock_id = clocks.create(fb, SYSTEM, name="matrix")["id"]
    return world


def _key(fb, tenant_id: str, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenants.issue_api_key(fb, SYSTEM, tenant_id=tenant_id, role=role).secret}"}


Request = Callable[[World], dict[str, Any]]


def nothing(_: World) -> dict[str, Any]:
    return {}


def body(make: Callable[[World], dict[str, Any]]) -> Request:
    return lambda world: {"json": make(world)}


def form(make: Callable[[World], dict[str, Any]] = lambda w: {}) -> Request:
    return lambda world: {"data": make(world)}


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    allowed: frozenset[str]
    request: Request = nothing
    prepare: Callable[[Any, World], None] | None = None  # extra state the endpoint needs


def subscribed(fb, world: World) -> None:
    subscriptions.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="free")


def on_pro(fb, world: World) -> None:
    subscriptions.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="pro")


def change_scheduled(fb, world: World) -> None:
    on_pro(fb, world)
    subscriptions.change_plan(fb, SYSTEM, "acme", plan="free", when="end_of_period")


def cancellation_scheduled(fb, world: World) -> None:
    on_pro(fb, world)
    subscriptions.cancel(fb, SYSTEM, "acme")


def alerted(fb, world: World) -> None:
    """A cancellation scheduled: an in-app notification and an e-mail delivery; and a webhook endpoint."""
    from farebox.alerts.services import delivery, notifications, webhook_endpoints

    cancellation_scheduled(fb, world)
    world.ids["notification_id"] = notifications.list_notifications(fb, SYSTEM, "acme").items[0].id
    world.ids["delivery_id"] = delivery.list_deliveries(fb, SYSTEM, tenant_id="acme")[0].id
    world.ids["endpoint_id"] = webhook_endpoints.create_endpoint(fb, SYSTEM, url="https://hooks.example.com/hook").id


def invoiced(fb, world: World) -> None:
    """On Pro with a card that attaches but whose charges fail: an open invoice."""
    from farebox.invoicing.services import invoices
    from farebox.payments import service as payments

    payments.add_payment_method(fb, SYSTEM, "acme", token="4000000000000341")
    on_pro(fb, world)
    world.ids["invoice_id"] = invoices.list_invoices(fb, SYSTEM, "acme")[0].id


def credited(fb, world: World) -> None:
    """Pro Plus paid by card, then Pro at once: a credit note and 30.00 on the credit balance (issue 14 #5)."""
    from farebox.payments import service as payments

    payments.add_payment_method(fb, SYSTEM, "acme", token="4242424242424242")
    subscriptions.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="pro_plus")
    subscriptions.change_plan(fb, SYSTEM, "acme", plan="pro", when="immediately")


def occurrence_started(fb, world: World) -> None:
    from farebox.metering.services import admission

    on_pro(fb, world)
    admission.start_occurrence(fb, SYSTEM, "acme", "o1")


def on_agents(fb, world: World) -> None:
    subscriptions.subscribe(fb, SYSTEM, "acme", catalog="agent-sessions", plan="sme")


def query(make: Callable[[World], dict[str, Any]]) -> Request:
    return lambda world: {"params": make(world)}


API_ROWS = [
    Row("GET", "/healthz", EVERYONE),
    Row("GET", "/metrics", EVERYONE),  # Prometheus scrapes it without a key: keep it on the internal network
    Row("GET", "/v1/catalogs", EVERYONE - set(UNAUTHENTICATED)),
    Row("POST", "/v1/catalogs", OPERATOR, body(lambda w: {"bundled": "session-caps"})),
    Row("GET", "/v1/tenants", OPERATOR),
    Row(
        "POST",
        "/v1/tenants",
        OPERATOR,
        body(lambda w: {"id": f"new{next(_unique)}", "name": "New", "owner_email": "o@new.test"}),
    ),
    Row("GET", "/v1/tenants/{tenant_id}", TEAM),
    Row("GET", "/v1/tenants/{tenant_id}/members", TEAM),
    Row(
        "POST",
        "/v1/tenants/{tenant_id}/members",
        BILLING,
        body(lambda w: {"email": f"m{next(_unique)}@acme.test", "role": "member"}),
    ),
    Row("POST", "/v1/tenants/{tenant_id}/api-keys", BILLING, body(lambda w: {"role": "member"})),
    Row("GET", "/v1/tenants/{tenant_id}/api-keys", BILLING),
    Row("POST", "/v1/tenants/{tenant_id}/api-keys/{key_id}/revoke", BILLING),
    Row("POST", "/v1/tenants/{tenant_id}/api-keys/{key_id}/rotate", BILLING, body(lambda w: {"grace_seconds": 0})),
    Row("GET", "/v1/api-keys", OPERATOR),
    Row("POST", "/v1/api-keys", OPERATOR, body(lambda w: {"name": "new"})),
    Row(
        "POST",
        "/v1/api-keys/{key_id}/revoke",
        OPERATOR,
        prepare=lambda fb, w: w.ids.update(key_id=w.ids["operator_key_id"]),
    ),
    Row(
        "POST",
        "/v1/api-keys/{key_id}/rotate",
        OPERATOR,
        body(lambda w: {}),
        lambda fb, w: w.ids.update(key_id=w.ids["operator_key_id"]),
    ),
    Row("GET", "/v1/tenants/{tenant_id}/subscription", BILLING, prepare=subscribed),
    Row(
        "POST",
        "/v1/tenants/{tenant_id}/subscription",
        BILLING,
        body(lambda w: {"catalog": "session-caps", "plan": "free"}),
    ),
    Row(
        "POST",
        "/v1/tenants/{tenant_id}/subscription/trial",
        BILLING,
        body(lambda w: {"catalog": "agent-sessions", "plan": "sme"}),
    ),
    Row("POST", "/v1/tenants/{tenant_id}/subscription/change", BILLING, body(lambda w: {"plan": "pro"}), subscribed),
    Row(
        "GET",
        "/v1/tenants/{tenant_id}/subscription/preview",
        BILLING,
        query(lambda w: {"catalog": "attendee-credits", "plan": "pro"}),
        subscribed,
    ),
    Row("GET", "/v1/tenants/{tenant_id}/subscription/upcoming", BILLING, prepare=change_scheduled),
    Row("POST", "/v1/tenants/{tenant_id}/subscription/upcoming/cancel", BILLING, prepare=change_scheduled),
    Row("POST", "/v1/tenants/{tenant_id}/subscription/cancel", BILLING, prepare=on_pro),
    Row("POST", "/v1/tenants/{tenant_id}/subscription/reactivate", BILLING, prepare=cancellation_scheduled),
    Row("GET", "/v1/tenants/{tenant_id}/subscription/cards", BILLING, prepare=subscribed),
    Row("GET", "/v1/tenants/{tenant_id}/subscription/transitions", BILLING, prepare=subscribed),
    Row(
        "POST",
        "/v1/tenants/{tenant_id}/subscription/sales-requests",
        BILLING,
        body(lambda w: {"plan": "business"}),
        subscribed,
    ),
    Row("GET", "/v1/test-clocks", OPERATOR),
    Row("POST", "/v1/test-clocks", OPERATOR, body(lambda w: {"name": "x"})),
    Row("GET", "/v1/test-clocks/{clock_id}", OPERATOR),
    Row("POST", "/v1/test-clocks/{clock_id}/tenants", OPERATOR, body(lambda w: {"tenant_id": "acme"})),
    Row("POST", "/v1/test-clocks/{clock_id}/advance", OPERATOR, body(lambda w: {"by": "1h"})),
    Row("GET", "/v1/audit", OPERATOR),
    Row("GET", "/v1/tenants/{tenant_id}/audit", BILLING),
    Row("GET", "/v1/tenants/{tenant_id}/export", BILLING),
    # alerts and notifications
    Row("GET", "/v1/tenants/{tenant_id}/notifications", BILLING, prepare=alerted),
    Row("POST", "/v1/tenants/{tenant_id}/notifications/read-all", BILLING, prepare=alerted),
    Row("POST", "/v1/tenants/{tenant_id}/notifications/{notification_id}/read", BILLING, prepare=alerted),
    Row("GET", "/v1/tenants/{tenant_id}/notification-channels", BILLING),
    Row(
        "PUT",
        "/v1/tenants/{tenant_id}/notification-channels",
        BILLING,
        body(lambda w: {"channel": "email", "enabled": False}),
    ),
    Row("GET", "/v1/notification-channels", OPERATOR),
    Row("PUT", "/v1/notification-channels", OPERATOR, body(lambda w: {"channel": "webhook", "enabled": False})),
    Row("GET", "/v1/tenants/{tenant_id}/email-outbox", BILLING, prepare=alerted),
    Row(
        "GET", "/v1/deliveries", BILLING, query(lambda w: {"tenant_id": "acme"}), alerted
    ),  # without tenant_id: operator only
    Row("GET", "/v1/deliveries/{delivery_id}", BILLING, prepare=alerted),
    Row("POST", "/v1/deliveries/{delivery_id}/replay", OPERATOR, prepare=alerted),
    Row("POST", "/v1/webhook-endpoints", OPERATOR, body(lambda w: {"url": "https://hooks.example.com/other"})),
    Row("GET", "/v1/webhook-endpoints", OPERATOR, prepare=alerted),
    Row("POST", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret", OPERATOR, prepare=alerted),
    Row("DELETE", "/v1/webhook-endpoints/{endpoint_id}", OPERATOR, prepare=alerted),
    # admission and usage (the platform calls admission with any of the tenant's keys)
    Row("POST", "/v1/tenants/{tenant_id}/occurrences/{occurrence_id}/start", TEAM, prepare=on_pro),
    Row(
        "POST",
        "/v1/tenants/{tenant_id}/occurrences/{occurrence_id}/join",
        TEAM,
        body(lambda w: {"person_id": f"p{next(_unique)}"}),
        on_pro,
    ),
    Row(
        "POST",
        "/v1/tenants/{tenant_id}/occurrences/{occurrence_id}/leave",
        TEAM,
        body(lambda w: {"person_id": "p1"}),
        occurrence_started,
    ),
    Row(
        "POST",
        "/v1/tenants/{tenant_id}/occurrences/{occurrence_id}/register",
        TEAM,
        body(lambda w: {"person_id": f"p{next(_unique)}"}),
        on_pro,
    ),
    Row("POST", "/v1/tenants/{tenant_id}/occurrences/{occurrence_id}/end", TEAM, prepare=occurrence_started),
    Row(
        "POST",
        "/v1/tenants/{tenant_id}/conversations/{conversation_id}/messages",
        TEAM,
        body(lambda w: {"from": "customer"}),
        on_agents,
    ),
    Row("GET", "/v1/tenants/{tenant_id}/entitlements/{feature}", TEAM, prepare=on_pro),
    Row(
        "POST",
        "/v1/tenants/{tenant_id}/usage/events",
        TEAM,
        body(
            lambda w: {
                "events": [
                    {
                        "id": f"e{next(_unique)}",
                        "source": "matrix",
                        "type": "attendee.registered",
                        "data": {"occurrence_id": "o1", "person_id": "p1"},
                    }
                ]
            }
        ),
        on_pro,
    ),
    Row("GET", "/v1/tenants/{tenant_id}/usage", BILLING, prepare=on_agents),
    Row("GET", "/v1/tenants/{tenant_id}/usage/daily", BILLING, prepare=on_agents),
    Row("GET", "/v1/tenants/{tenant_id}/usage/top", BILLING, prepare=on_agents),
    Row("PUT", "/v1/tenants/{tenant_id}/usage/session-limit", BILLING, body(lambda w: {"sessions": 100}), on_agents),
    Row("DELETE", "/v1/tenants/{tenant_id}/usage/session-limit", BILLING, prepare=on_agents),
    Row("GET", "/v1/usage/verify", OPERATOR),
    # invoices and payments
    Row("GET", "/v1/tenants/{tenant_id}/invoices", BILLING, prepare=invoiced),
    Row("GET", "/v1/tenants/{tenant_id}/invoices/preview", BILLING, prepare=on_pro),
    Row("GET", "/v1/tenants/{tenant_id}/invoices/{invoice_id}", BILLING, prepare=invoiced),
    Row("GET", "/v1/tenants/{tenant_id}/invoices/{invoice_id}/payments", BILLING, prepare=invoiced),
    Row("GET", "/v1/tenants/{tenant_id}/invoices/{invoice_id}/pdf", BILLING, prepare=invoiced),
    Row(
        "POST",
        "/v1/tenants/{tenant_id}/invoices/{invoice_id}/email",
        BILLING,
        body(lambda w: {"to": "books@acme.test"}),
        invoiced,
    ),
    Row("POST", "/v1/tenants/{tenant_id}/invoices/{invoice_id}/pay", BILLING, prepare=invoiced),
    Row(
        "POST",
        "/v1/tenants/{tenant_id}/invoices/{invoice_id}/void",
        OPERATOR,
        body(lambda w: {"reason": "written off"}),
        invoiced,
    ),
    Row("GET", "/v1/tenants/{tenant_id}/credit-balance", BILLING, prepare=credited),
    Row("GET", "/v1/tenants/{tenant_id}/credit-notes", BILLING, prepare=credited),
    Row("POST", "/v1/tenants/{tenant_id}/credit-balance/refund", OPERATOR, prepare=credited),
    Row("GET", "/v1/tenants/{tenant_id}/payment-methods", BILLING),
    Row("POST", "/v1/tenants/{tenant_id}/payment-methods", BILLING, body(lambda w: {"token": "4242424242424242"})),
    Row("GET", "/v1/tenants/{tenant_id}/billing-details", BILLING),
    Row("PATCH", "/v1/tenants/{tenant_id}/billing-details", BILLING, body(lambda w: {"tax_id": f"GB{next(_unique)}"})),
    Row("PUT", "/v1/tenants/{tenant_id}/payment-terms", OPERATOR, body(lambda w: {"bank_transfer_days": 30})),
    Row(
        "POST",
        "/v1/tenants/{tenant_id}/payment-links",
        BILLING,
        body(lambda w: {"kind": "checkout", "return_url": "http://127.0.0.1:8000/back"}),
    ),
]

PORTAL_ROWS = [
    Row("GET", "/portal", SIGNED_IN),
    Row("GET", "/portal/sign-in", EVERYONE),
    Row("GET", "/portal/operator", EVERYONE),
    Row("POST", "/portal/sign-out", SIGNED_IN, form()),
    Row("GET", "/portal/t/{tenant_id}", TEAM),
    Row("GET", "/portal/t/{tenant_id}/billing", BILLING),
    Row("GET", "/portal/console", OPERATOR),
    Row("GET", "/portal/console/catalogs", OPERATOR),
    Row("GET", "/portal/console/clocks", OPERATOR),
    Row("POST", "/portal/console/clocks", OPERATOR, form(lambda w: {"name": "x"})),
    Row("POST", "/portal/console/clocks/{clock_id}/tenants", OPERATOR, form(lambda w: {"tenant_id": "acme"})),
    Row("POST", "/portal/console/clocks/{clock_id}/advance", OPERATOR, form(lambda w: {"by": "1h"})),
    # the Billing tab (issue 7)
    Row("GET", "/portal/t/{tenant_id}/audit", BILLING, prepare=subscribed),
    Row(
        "GET",
        "/portal/t/{tenant_id}/billing/plans/{plan}",
        BILLING,
        prepare=lambda fb, w: (on_pro(fb, w), w.ids.update(plan="pro_plus")),
    ),
    Row("POST", "/portal/t/{tenant_id}/billing/subscribe", BILLING, form(lambda w: {"plan": "pro"}), subscribed),
    Row(
        "POST",
        "/portal/t/{tenant_id}/billing/sales-requests",
        BILLING,
        form(lambda w: {"plan": "business"}),
        subscribed,
    ),
    Row("GET", "/portal/t/{tenant_id}/billing/upcoming/cancel", BILLING, prepare=change_scheduled),
    Row("POST", "/portal/t/{tenant_id}/billing/upcoming/cancel", BILLING, form(), change_scheduled),
    Row("GET", "/portal/t/{tenant_id}/billing/cancel", BILLING, prepare=on_pro),
    Row("POST", "/portal/t/{tenant_id}/billing/cancel", BILLING, form(), on_pro),
    Row("POST", "/portal/t/{tenant_id}/billing/reactivate", BILLING, form(), cancellation_scheduled),
    Row("POST", "/portal/t/{tenant_id}/billing/session-limit", BILLING, form(lambda w: {"sessions": "100"}),
        lambda fb, w: subscriptions.subscribe(fb, SYSTEM, "acme", catalog="agent-sessions", plan="sme")),
    Row("POST", "/portal/t/{tenant_id}/billing/session-limit/reset", BILLING, form(),
        lambda fb, w: subscriptions.subscribe(fb, SYSTEM, "acme", catalog="agent-sessions", plan="sme")),
    Row("POST", "/portal/t/{tenant_id}/billing/notifications/read", BILLING, form(), alerted),
    Row("POST", "/portal/t/{tenant_id}/billing/details", BILLING, form(lambda w: {"tax_id": "GB1", "tax_rate": "20"})),
    Row("GET", "/portal/t/{tenant_id}/billing/export", BILLING, prepare=subscribed),
    Row("GET", "/portal/console/deliveries", OPERATOR, prepare=alerted),
    Row("POST", "/portal/console/deliveries/{delivery_id}/replay", OPERATOR, form(), alerted),
    Row("GET", "/portal/console/billing-runs", OPERATOR),
    Row("POST", "/portal/console/billing-runs", OPERATOR, form()),
    Row("GET", "/portal/console/audit", OPERATOR, prepare=subscribed),
    # API keys (issue 17, F9)
    Row("GET", "/portal/t/{tenant_id}/keys", BILLING),
    Row("POST", "/portal/t/{tenant_id}/keys", BILLING, form(lambda w: {"role": "member", "name": "x"})),
    Row("POST", "/portal/t/{tenant_id}/keys/{key_id}/revoke", BILLING, form()),
    Row("POST", "/portal/t/{tenant_id}/keys/{key_id}/rotate", BILLING, form(lambda w: {"grace_hours": "0"})),
    Row("GET", "/portal/console/keys", OPERATOR),
    Row("POST", "/portal/console/keys", OPERATOR, form(lambda w: {"name": "x"})),
    Row(
        "POST",
        "/portal/console/keys/{key_id}/revoke",
        OPERATOR,
        form(),
        lambda fb, w: w.ids.update(key_id=w.ids["operator_key_id"]),
    ),
    Row(
        "POST",
        "/portal/console/keys/{key_id}/rotate",
        OPERATOR,
        form(),
        lambda fb, w: w.ids.update(key_id=w.ids["operator_key_id"]),
    ),
    # invoices and the payment method on the Billing tab
    Row("GET", "/portal/t/{tenant_id}/billing/invoices/{invoice_id}.pdf", BILLING, prepare=lambda fb, w: (
        on_pro(fb, w),
        w.ids.update(invoice_id=invoices.list_invoices(fb, SYSTEM, "acme")[0].id),
    )),
    Row("POST", "/portal/t/{tenant_id}/billing/payment-method", BILLING, form(), on_pro),
    Row("GET", "/portal/t/{tenant_id}/billing/payment-method/sandbox", BILLING, prepare=on_pro),
    Row(
        "POST",
        "/portal/t/{tenant_id}/billing/payment-method/sandbox",
        BILLING,
        form(lambda w: {"card": "4242 4242 4242 4242"}),
        on_pro,
    ),
]
# Reached without a session, with a secret of their own (tested in test_portal.py):
# the sign-in form posts, the magic link, the operator's key form.
# and payment providers' webhooks, verified by their signature (tests/e2e/test_payments_api.py).
PUBLIC_WITH_THEIR_OWN_SECRET = {
    ("POST", "/portal/sign-in"),
    ("GET", "/portal/sign-in/{token}"),
    ("POST", "/portal/sign-in/{token}"),
    ("POST", "/portal/operator"),
    ("POST", "/v1/webhooks/{provider}"),
}
UNDOCUMENTED = {("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/oauth2-redirect"), ("GET", "/redoc")}


def _flatten(routes):
    """Every route, also inside included routers (FastAPI >= 0.16x keeps them nested)."""
    for route in routes:
        if hasattr(route, "effective_route_contexts"):
            yield from route.effective_route_contexts()
        else:
            yield route


def _routes(app) -> set[tuple[str, str]]:
    found = set()
    for route in _flatten(app.routes):
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if path is None or not methods or path.startswith("/portal/static"):
            continue
        for method in methods - {"HEAD", "OPTIONS"}:
            found.add((method, path))
    return found


def test_every_endpoint_and_portal_action_has_a_row(fb):
    app = create_app(fb)
    rows = {(r.method, r.path) for r in API_ROWS + PORTAL_ROWS}
    missing = _routes(app) - rows - PUBLIC_WITH_THEIR_OWN_SECRET - UNDOCUMENTED
    assert not missing, f"endpoints without a row in the authorization matrix: {sorted(missing)}"
    assert not rows - _routes(app), f"rows for endpoints that do not exist: {sorted(rows - _routes(app))}"


def snapshot(fb) -> dict[str, list[tuple]]:
    with fb.engine.connect() as conn:
        return {t.name: sorted(map(repr, conn.execute(select(t)).all())) for t in metadata.sorted_tables}


def _call(client: TestClient, world: World, row: Row, caller: str, *, portal: bool):
    path = row.path.format(tenant_id="acme", clock_id=world.clock_id, **world.ids)
    kwargs = row.request(world)
    client.cookies.clear()
    headers: dict[str, str] = {}
    if portal:
        session = world.sessions.get(caller)
        if session is not None:
            client.cookies.set(SESSION_COOKIE, session.token)
        elif caller == "wrong":
            client.cookies.set(SESSION_COOKIE, "not-a-session")
        if "data" in kwargs:
            kwargs["data"] = {**kwargs["data"], "csrf_token": session.csrf_token if session else "x"}
    else:
        headers = world.headers[caller]
    return client.request(row.method, path, headers=headers, **kwargs)


def _allowed_ok(response, *, portal: bool) -> bool:
    if portal and response.status_code in (302, 303):
        return (
            not response.headers["location"].startswith("/portal/sign-in")
            or response.request.url.path == "/portal/sign-out"
        )
    return 200 <= response.status_code < 300


def _refused_ok(response, caller: str, *, portal: bool) -> bool:
    if portal and caller in UNAUTHENTICATED:
        return response.status_code == 303 and response.headers["location"] == "/portal/sign-in"
    if caller in UNAUTHENTICATED:
        return response.status_code == 401
    return response.status_code in (403, 404)


@pytest.mark.parametrize("row", API_ROWS + PORTAL_ROWS, ids=lambda r: f"{r.method} {r.path}")
def test_G6_each_caller_is_allowed_or_refused_with_nothing_changed(fb, row: Row):
    portal = row.path.startswith("/portal")
    world = build_world(fb)
    if row.prepare is not None:
        row.prepare(fb, world)
    with TestClient(create_app(fb), follow_redirects=False) as client:
        for caller in CALLERS:
            if caller in row.allowed:
                continue
            before = snapshot(fb)
            response = _call(client, world, row, caller, portal=portal)
            assert _refused_ok(response, caller, portal=portal), (
                f"{caller}: {response.status_code} {response.text[:300]}"
            )
            assert snapshot(fb) == before, f"{caller} was refused but something changed"
        succeeded = 0
        for caller in CALLERS:
            if caller not in row.allowed:
                continue
            response = _call(client, world, row, caller, portal=portal)
            if (
                succeeded
                and response.status_code in (404, 409)
                and response.json()["error"]["code"] not in ("not_found", "forbidden")
            ):
                # an earlier caller made the change; this one got past authorization to a rule (e.g. same_plan)
                continue
            assert _allowed_ok(response, portal=portal), f"{caller}: {response.status_code} {response.text[:300]}"
            succeeded += 1


IDEMPOTENT_BILLING_ROWS = [
    r
    for r in API_ROWS
    if r.method in ("POST", "PUT", "DELETE")
    and r.allowed == BILLING
    and "{tenant_id}" in r.path
    and "api-keys" not in r.path
]


@pytest.mark.parametrize("row", IDEMPOTENT_BILLING_ROWS, ids=lambda r: f"{r.method} {r.path}")
def test_F5_an_idempotent_answer_is_never_replayed_to_another_role_or_tenant(fb, row: Row):
    """The owner's stored answer is not replayed to a member or another tenant's owner (who are refused as
    without the key), and their refusals, stored under their own scope, never answer the owner."""
    world = build_world(fb)
    if row.prepare is not None:
        row.prepare(fb, world)
    kwargs = row.request(world)
    path = row.path.format(tenant_id="acme", clock_id=world.clock_id, **world.ids)
    with TestClient(create_app(fb), follow_redirects=False) as client:
        for caller in ("member", "other_owner"):  # refused first: their refusal must not poison the owner's key
            response = client.request(
                row.method, path, headers={**world.headers[caller], "Idempotency-Key": f"K-{caller}"}, **kwargs
            )
            assert response.status_code in (403, 404), f"{caller}: {response.status_code} {response.text[:200]}"
        for caller in ("member", "other_owner"):
            owner = client.request(
                row.method, path, headers={**world.headers["owner"], "Idempotency-Key": f"K-{caller}"}, **kwargs
            )
            assert "idempotent-replayed" not in owner.headers, owner.text[:200]
            assert owner.status_code < 400 or owner.json()["error"]["code"] not in ("forbidden", "not_found"), (
                owner.text[:200]
            )
        first = client.request(row.method, path, headers={**world.headers["owner"], "Idempotency-Key": "K"}, **kwargs)
        for caller in ("member", "other_owner"):
            response = client.request(
                row.method, path, headers={**world.headers[caller], "Idempotency-Key": "K"}, **kwargs
            )
            assert response.status_code in (403, 404) and "idempotent-replayed" not in response.headers, (
                f"{caller} after the owner ({first.status_code}): {response.status_code} {response.text[:200]}"
            )
