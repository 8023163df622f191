"""The operator console: tenants with state, usage and MRR; webhook deliveries with
replay; billing runs; the audit log of every tenant (G2, G12, G3)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from farebox.domain.access import SYSTEM, Principal, Role
from farebox.entrypoints.api.app import create_app
from farebox.entrypoints.portal.web import SESSION_COOKIE
from farebox.services import admission, delivery, portal_auth, subscriptions

from factories import make_tenant


@pytest.fixture
def operator(fb):
    with TestClient(create_app(fb), follow_redirects=False) as c:
        opened = portal_auth._open_session(fb, Principal(Role.OPERATOR, email="operator"))
        c.cookies.set(SESSION_COOKIE, opened.token)
        c.csrf = opened.csrf_token
        yield c


def test_tenants_show_state_usage_and_mrr(fb, operator):
    make_tenant(fb, tenant_id="agents", catalog="agent-sessions", plan="sme")
    make_tenant(fb, tenant_id="events", catalog="attendee-credits", plan="pro")
    make_tenant(fb, tenant_id="webinars", catalog="session-caps", plan="free")
    for i in range(3):
        admission.message(fb, SYSTEM, "agents", f"c{i}", sender="customer")
    page = operator.get("/portal/console").text
    assert "sessions 3 / 600" in page
    assert "150.00 EUR" in page  # SME, monthly
    assert "99.00 USD" in page  # attendee-credits Pro: 1,188.00 a year / 12
    assert "active" in page and "free" in page
    assert "webinars" not in operator.get("/portal/console?q=agents").text


def test_G12_deliveries_listed_and_replayed(fb, operator):
    make_tenant(fb, tenant_id="acme", catalog="session-caps", plan="pro")
    subscriptions.cancel(fb, SYSTEM, "acme")  # an alert with an e-mail delivery
    found = delivery.list_deliveries(fb, SYSTEM, tenant_id="acme")
    assert found
    page = operator.get("/portal/console/deliveries").text
    assert found[0].id in page and "Replay" in page
    r = operator.post(f"/portal/console/deliveries/{found[0].id}/replay", data={"csrf_token": operator.csrf})
    assert r.status_code == 303
    assert "will be sent again" in operator.get(r.headers["location"]).text
    assert operator.get("/portal/console/deliveries?status=delivered").text.count("Replay") == 0


def test_billing_runs_page_and_audit_log(fb, operator):
    make_tenant(fb, tenant_id="acme", catalog="session-caps", plan="pro")
    assert operator.get("/portal/console/billing-runs").status_code == 200
    assert operator.post("/portal/console/billing-runs", data={"csrf_token": operator.csrf}).status_code == 200
    page = operator.get("/portal/console/audit?tenant=acme").text
    assert "subscription.started" in page and "acme" in page
