"""The operator console: tenants with state, usage and MRR; webhook deliveries with
replay; billing runs; the audit log of every tenant (G2, G12, G3)."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient

from farebox.alerts.services import delivery
from farebox.entrypoints.api.app import create_app
from farebox.entrypoints.portal.web import SESSION_COOKIE
from farebox.kernel.access import SYSTEM, Principal, Role
from farebox.metering.services import admission
from farebox.subscriptions.services import subscriptions
from farebox.tenants.services import sign_in as portal_auth

from factories import make_tenant


def _rows(page: str) -> list[list[str]]:
    """The cells of each row of the tenants table, as text."""
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", r, re.S) for r in rows]
    return [[html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in row] for row in cells]


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
    rows = {cells[0]: cells[1:] for cells in _rows(page)}
    # T11: each tenant's own row, not words anywhere on the page
    assert rows["agents"] == ["Agents", "agent-sessions", "SME", "active", "sessions 3 / 600", "150.00 EUR", "—"]
    # attendee-credits Pro: 1,188.00 a year / 12
    assert rows["events"] == ["Events", "attendee-credits", "Pro", "active", "credits 0 / 1,200", "99.00 USD", "—"]
    assert rows["webinars"] == ["Webinars", "session-caps", "Free", "free", "—", "—", "—"]
    assert "MRR" in page and "150.00 EUR" in page and "99.00 USD" in page  # the totals per currency
    assert [cells[0] for cells in _rows(operator.get("/portal/console?q=agents").text)] == ["agents"]


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
    page = operator.get("/portal/console/billing-runs").text
    # the first invoice was issued on subscribing: nothing is due
    assert re.search(r'not invoiced yet: <strong class="stat">0</strong>', page), page
    ran = operator.post("/portal/console/billing-runs", data={"csrf_token": operator.csrf})
    assert ran.status_code == 200 and "issued 0 invoice(s)" in ran.text
    page = operator.get("/portal/console/audit?tenant=acme").text
    assert "subscription.started" in page and "acme" in page
