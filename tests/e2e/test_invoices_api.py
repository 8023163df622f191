"""Invoices and payment methods over HTTP: owners/admins only, PDF download, pay, preview (G6, G9, G13)."""

import pytest
from fastapi.testclient import TestClient

from farebox.entrypoints.api.app import create_app
from farebox.kernel.access import SYSTEM, Role
from farebox.subscriptions.services import subscriptions as subs
from farebox.tenants.services import tenants

OPERATOR = {"Authorization": "Bearer test-operator-key"}


@pytest.fixture
def client(fb):
    fb.usage_source = lambda conn, t, s, a, b: {}
    with TestClient(create_app(fb)) as c:
        yield c


def _key(fb, tenant_id, role):
    return {"Authorization": f"Bearer {tenants.issue_api_key(fb, SYSTEM, tenant_id=tenant_id, role=role).secret}"}


def _billed_tenant(fb, client, card="4000 0000 0000 0341"):
    assert (
        client.post(
            "/v1/tenants", json={"id": "acme", "name": "Acme", "owner_email": "o@acme.test"}, headers=OPERATOR
        ).status_code
        == 201
    )
    owner = _key(fb, "acme", Role.OWNER)
    r = client.post("/v1/tenants/acme/payment-methods", json={"token": card}, headers=owner)
    assert r.status_code == 201, r.text
    subs.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="pro", cause="test")
    from farebox.invoicing.services import billing_run

    billing_run.run(fb, SYSTEM)
    return owner


def test_G13_owner_lists_downloads_and_pays_an_invoice(fb, client):
    owner = _billed_tenant(fb, client)
    (inv,) = client.get("/v1/tenants/acme/invoices", headers=owner).json()
    assert (inv["number"], inv["status"], inv["total"]) == ("FB-2026-000001", "open", "29.00 USD")
    pdf = client.get(f"/v1/tenants/acme/invoices/{inv['id']}/pdf", headers=owner)
    assert (
        pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    )
    assert "FB-2026-000001.pdf" in pdf.headers["content-disposition"]
    failed = client.post(f"/v1/tenants/acme/invoices/{inv['id']}/pay", headers=owner)
    assert failed.status_code == 200 and failed.json()["status"] == "failed"
    r = client.post("/v1/tenants/acme/payment-methods", json={"token": "4242 4242 4242 4242"}, headers=owner)
    assert r.status_code == 201 and r.json()["last4"] == "4242"
    assert client.get(f"/v1/tenants/acme/invoices/{inv['id']}", headers=owner).json()["status"] == "paid"
    again = client.post(f"/v1/tenants/acme/invoices/{inv['id']}/pay", headers=owner)
    assert again.status_code == 409 and again.json()["error"]["code"] == "invoice_not_open"
    attempts = client.get(f"/v1/tenants/acme/invoices/{inv['id']}/payments", headers=owner).json()
    assert [a["status"] for a in attempts] == ["failed", "failed", "succeeded"]


def test_G6_members_get_403_and_other_tenants_404_on_invoices_and_pdf(fb, client):
    _billed_tenant(fb, client)
    member = _key(fb, "acme", Role.MEMBER)
    (inv,) = client.get("/v1/tenants/acme/invoices", headers=OPERATOR).json()
    for path in (
        "/v1/tenants/acme/invoices",
        f"/v1/tenants/acme/invoices/{inv['id']}/pdf",
        "/v1/tenants/acme/payment-methods",
    ):
        r = client.get(path, headers=member)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", path
    client.post("/v1/tenants", json={"id": "other", "name": "Other", "owner_email": "o@other.test"}, headers=OPERATOR)
    r = client.get(f"/v1/tenants/acme/invoices/{inv['id']}/pdf", headers=_key(fb, "other", Role.OWNER))
    assert r.status_code == 404


def test_G9_a_declined_card_is_refused_with_402(fb, client):
    client.post("/v1/tenants", json={"id": "acme", "name": "Acme", "owner_email": "o@acme.test"}, headers=OPERATOR)
    r = client.post("/v1/tenants/acme/payment-methods", json={"token": "4000000000000002"}, headers=OPERATOR)
    assert r.status_code == 402 and r.json()["error"]["code"] == "payment_method_refused"


def test_G13_preview_and_payment_links(fb, client):
    owner = _billed_tenant(fb, client, card="4242424242424242")
    preview = client.get("/v1/tenants/acme/invoices/preview", headers=owner).json()
    assert preview["status"] == "draft" and preview["number"] is None and preview["total"] == "29.00 USD"
    link = client.post(
        "/v1/tenants/acme/payment-links",
        json={"kind": "portal", "return_url": "https://app.test/billing"},
        headers=owner,
    )
    assert link.status_code == 200 and link.json()["url"].startswith("https://app.test/billing")
