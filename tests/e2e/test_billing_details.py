"""D7 (G13, G6): a tenant's billing e-mail, legal name, address, tax id and tax rate can be set by an owner
or admin through the API and the portal's Billing tab, are audited with the actor, and are printed on the
invoices and PDFs issued afterwards; an invoice keeps the details it was issued with."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from test_portal_billing import as_role

from farebox.entrypoints.api.app import create_app
from farebox.events import due
from farebox.invoicing.services import invoices
from farebox.kernel.access import SYSTEM, Role
from farebox.tenants.services import tenants

from factories import make_tenant

OPERATOR = {"Authorization": "Bearer test-operator-key"}
DETAILS = {
    "billing_email": "finance@acme.example",
    "legal_name": "Acme Webinars Ltd",
    "billing_address": "1 High Street\nLondon EC1A 1AA\nUnited Kingdom",
    "tax_id": "GB123456789",
    "tax_rate_bp": 2000,
}


@pytest.fixture
def client(fb):
    with TestClient(create_app(fb), follow_redirects=False) as c:
        yield c


def _key(fb, tenant_id: str, role: Role) -> dict[str, str]:
    issued = tenants.issue_api_key(fb, SYSTEM, tenant_id=tenant_id, role=role)
    return {"Authorization": f"Bearer {issued.secret}"}


def _pdf_text(fb, tenant_id: str, invoice_id: str) -> str:
    pdf = invoices.invoice_pdf(fb, SYSTEM, tenant_id, invoice_id)
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_D7_owner_sets_billing_details_over_http_audited_and_printed_on_the_next_invoice(fb, client):
    make_tenant(fb, tenant_id="acme", catalog="agent-sessions", plan="sme")
    owner = _key(fb, "acme", Role.OWNER)
    assert client.get("/v1/tenants/acme/billing-details", headers=owner).json()["tax_rate_bp"] == 0
    r = client.patch("/v1/tenants/acme/billing-details", json=DETAILS, headers=owner)
    assert r.status_code == 200, r.text
    assert r.json() == {"tenant_id": "acme", **DETAILS, "tax_rate_percent": "20"}
    assert client.get("/v1/tenants/acme/billing-details", headers=owner).json() == r.json()

    (entry,) = client.get("/v1/tenants/acme/audit?kind=tenant.billing_details", headers=owner).json()
    assert entry["actor"].startswith("owner:") and entry["kind"] == "tenant.billing_details_changed"
    assert entry["data"]["after"] == DETAILS and entry["data"]["before"]["tax_rate_bp"] == 0

    # the first invoice was issued before: it keeps what it was issued with (G13 snapshot)
    (first,) = client.get("/v1/tenants/acme/invoices", headers=owner).json()
    assert first["tax_rate_bp"] == 0 and first["tax_id"] is None and first["bill_to"]["name"] == "Acme"
    assert "Acme Webinars Ltd" not in _pdf_text(fb, "acme", first["id"])

    fb.clock.advance(timedelta(days=32))
    due.run_due(fb)  # the renewal is invoiced with the details in force now
    issued = client.get("/v1/tenants/acme/invoices", headers=owner).json()
    latest = next(i for i in issued if i["id"] != first["id"])
    assert latest["tax_rate_bp"] == 2000 and latest["tax_id"] == "GB123456789"
    assert latest["bill_to"] == {
        "name": "Acme Webinars Ltd",
        "email": "finance@acme.example",
        "address": DETAILS["billing_address"],
    }
    text = _pdf_text(fb, "acme", latest["id"])
    for expected in (
        "Acme Webinars Ltd",
        "1 High Street",
        "London EC1A 1AA",
        "United Kingdom",
        "finance@acme.example",
        "GB123456789",
        "Tax (20%)",
    ):
        assert expected in text, expected


def test_D7_G6_only_owners_admins_and_the_operator_and_never_another_tenant(fb, client):
    make_tenant(fb, tenant_id="acme")
    make_tenant(fb, tenant_id="globex")
    admin, member = _key(fb, "acme", Role.ADMIN), _key(fb, "acme", Role.MEMBER)
    assert client.patch("/v1/tenants/acme/billing-details", json={"tax_id": "X1"}, headers=admin).status_code == 200
    assert client.patch("/v1/tenants/acme/billing-details", json={"tax_id": "X2"}, headers=OPERATOR).status_code == 200
    r = client.patch("/v1/tenants/acme/billing-details", json={"tax_id": "X3"}, headers=member)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert client.get("/v1/tenants/acme/billing-details", headers=member).status_code == 403
    outsider = _key(fb, "globex", Role.OWNER)
    assert client.patch("/v1/tenants/acme/billing-details", json={"tax_id": "X4"}, headers=outsider).status_code == 404
    assert client.get("/v1/tenants/acme/billing-details", headers=OPERATOR).json()["tax_id"] == "X2"
    actors = [
        e["actor"] for e in client.get("/v1/tenants/acme/audit?kind=tenant.billing_details", headers=OPERATOR).json()
    ]
    assert sorted(a.split(":")[0] for a in actors) == ["admin", "operator"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tax_rate_bp": "2000"}, "tax_rate_bp"),  # D8: strictly typed
        ({"tax_rate_bp": True}, "tax_rate_bp"),
        ({"tax_rate_bp": 10_001}, "tax_rate_bp"),
        ({"tax_rate_bp": -1}, "tax_rate_bp"),
        ({"billing_email": "not-an-address"}, "billing_email"),
        ({"legal_name": "Two\nlines"}, "legal_name"),
        ({"tax_id": "<script>"}, "tax_id"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_D7_bad_details_are_a_422_naming_the_field_and_change_nothing(fb, client, body, field):
    make_tenant(fb, tenant_id="acme")
    r = client.patch("/v1/tenants/acme/billing-details", json=body, headers=OPERATOR)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    named = [p["field"] for p in error["details"].get("problems", [])] + [error["details"].get("field")]
    assert field in named, error
    assert client.get("/v1/tenants/acme/audit?kind=tenant.billing_details", headers=OPERATOR).json() == []


def test_D7_only_fields_sent_change_and_null_clears(fb, client):
    make_tenant(fb, tenant_id="acme")
    client.patch("/v1/tenants/acme/billing-details", json=DETAILS, headers=OPERATOR)
    r = client.patch(
        "/v1/tenants/acme/billing-details", json={"tax_id": None, "legal_name": "  Acme Plc  "}, headers=OPERATOR
    )
    assert r.json()["tax_id"] is None and r.json()["legal_name"] == "Acme Plc" and r.json()["tax_rate_bp"] == 2000
    again = client.patch("/v1/tenants/acme/billing-details", json={"legal_name": "Acme Plc"}, headers=OPERATOR)
    assert again.status_code == 200
    assert (
        len(client.get("/v1/tenants/acme/audit?kind=tenant.billing_details", headers=OPERATOR).json()) == 2
    )  # no-op not audited


def test_D7_portal_billing_tab_form_with_csrf(fb, client):
    make_tenant(fb, tenant_id="acme")
    csrf = as_role(fb, client, "acme", Role.OWNER)
    page = client.get("/portal/t/acme/billing")
    assert (
        page.status_code == 200
        and "Billing details" in page.text
        and 'action="/portal/t/acme/billing/details"' in page.text
    )
    form = {
        "billing_email": "finance@acme.example",
        "legal_name": "Acme Webinars Ltd",
        "billing_address": "1 High Street\r\nLondon",
        "tax_id": "GB123456789",
        "tax_rate": "7.25",
    }
    assert (
        client.post("/portal/t/acme/billing/details", data=form).status_code == 422
    )  # no CSRF token: refused before anything runs
    assert client.post("/portal/t/acme/billing/details", data={**form, "csrf_token": "wrong"}).status_code == 403
    r = client.post("/portal/t/acme/billing/details", data={**form, "csrf_token": csrf})
    assert r.status_code == 303 and r.headers["location"].endswith("done=details_saved")
    shown = client.get(r.headers["location"]).text
    assert "Billing details saved" in shown and 'value="7.25"' in shown and "1 High Street\nLondon</textarea>" in shown
    details = client.get("/v1/tenants/acme/billing-details", headers=OPERATOR).json()
    assert details["tax_rate_bp"] == 725 and details["billing_address"] == "1 High Street\nLondon"
    (entry,) = client.get("/v1/tenants/acme/audit?kind=tenant.billing_details", headers=OPERATOR).json()
    assert entry["actor"].startswith("owner:")

    refused = client.post("/portal/t/acme/billing/details", data={**form, "tax_rate": "120", "csrf_token": csrf})
    assert refused.status_code == 200 and "a percentage from 0 to 100" in refused.text
    refused = client.post("/portal/t/acme/billing/details", data={**form, "billing_email": "nope", "csrf_token": csrf})
    assert refused.status_code == 200 and "not an e-mail address" in refused.text
    assert client.get("/v1/tenants/acme/billing-details", headers=OPERATOR).json()["tax_rate_bp"] == 725


def test_D7_G6_a_member_cannot_use_the_form(fb, client):
    make_tenant(fb, tenant_id="acme")
    csrf = as_role(fb, client, "acme", Role.MEMBER)
    r = client.post("/portal/t/acme/billing/details", data={"tax_id": "X", "csrf_token": csrf})
    assert r.status_code == 403
    assert client.get("/v1/tenants/acme/billing-details", headers=OPERATOR).json()["tax_id"] is None
