"""The credit balance, credit notes and refunds over HTTP (issue 14 #5, audit #5; G6, G15)."""

import io

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

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


def _credited(fb, client, clock):
    """Pro Plus by card, then Pro at once halfway: a 15.00 credit note."""
    assert (
        client.post(
            "/v1/tenants", json={"id": "acme", "name": "Acme", "owner_email": "o@acme.test"}, headers=OPERATOR
        ).status_code
        == 201
    )
    owner = {"Authorization": f"Bearer {tenants.issue_api_key(fb, SYSTEM, tenant_id='acme', role=Role.OWNER).secret}"}
    assert (
        client.post("/v1/tenants/acme/payment-methods", json={"token": "4242424242424242"}, headers=owner).status_code
        == 201
    )
    sub = subs.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="pro_plus", cause="test")
    clock.set(sub.period.start + (sub.period.end - sub.period.start) / 2)
    r = client.post("/v1/tenants/acme/subscription/change", json={"plan": "pro", "when": "immediately"}, headers=owner)
    assert r.status_code == 200, r.text
    return owner, sub


def test_audit5_the_owner_sees_the_credit_note_and_the_balance_and_the_renewal_shows_the_credit_applied(
    fb, client, clock
):
    owner, sub = _credited(fb, client, clock)
    (note,) = client.get("/v1/tenants/acme/credit-notes", headers=owner).json()
    assert (note["document"], note["number"], note["status"], note["total"]) == (
        "credit_note",
        "FB-CN-2026-000001",
        "issued",
        "-15.00 USD",
    )
    assert [i["number"] for i in client.get("/v1/tenants/acme/invoices", headers=owner).json()] == ["FB-2026-000001"]
    balance = client.get("/v1/tenants/acme/credit-balance", headers=owner).json()
    assert balance["balances"] == [{"currency": "USD", "amount_minor": 1500, "amount": "15.00 USD"}]
    assert [(e["kind"], e["amount_minor"], e["document_id"]) for e in balance["entries"]] == [
        ("credit_note", 1500, note["id"])
    ]
    pdf = client.get(f"/v1/tenants/acme/invoices/{note['id']}/pdf", headers=owner)
    text = " ".join("".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages).split())
    assert "Credit note FB-CN-2026-000001" in text and "Credited to your balance" in text and "15.00 USD" in text

    from farebox.events import due

    clock.set(sub.period.end)
    due.run_due(fb)
    renewal = client.get("/v1/tenants/acme/invoices", headers=owner).json()[0]
    assert (renewal["total"], renewal["credit_applied_minor"], renewal["amount_due"], renewal["status"]) == (
        "29.00 USD",
        1500,
        "14.00 USD",
        "paid",
    )
    pdf = client.get(f"/v1/tenants/acme/invoices/{renewal['id']}/pdf", headers=owner)
    text = " ".join("".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages).split())
    assert "Credit applied" in text and "-15.00 USD" in text and "Amount due" in text and "14.00 USD" in text


def test_audit5_only_the_operator_refunds_and_the_body_is_strict(fb, client, clock):
    owner, _ = _credited(fb, client, clock)
    assert client.post("/v1/tenants/acme/credit-balance/refund", json={}, headers=owner).status_code == 403
    assert (
        client.post(
            "/v1/tenants/acme/credit-balance/refund", json={"amount_minor": "500"}, headers=OPERATOR
        ).status_code
        == 422
    )
    assert (
        client.post("/v1/tenants/acme/credit-balance/refund", json={"amount_minor": 1501}, headers=OPERATOR).json()[
            "error"
        ]["code"]
        == "credit_refund_too_large"
    )
    r = client.post("/v1/tenants/acme/credit-balance/refund", json={"amount_minor": 500}, headers=OPERATOR)
    assert r.status_code == 200, r.text
    assert [(x["status"], x["amount"]) for x in r.json()] == [("succeeded", "5.00 USD")]
    (rest,) = client.post("/v1/tenants/acme/credit-balance/refund", headers=OPERATOR).json()
    assert rest["amount"] == "10.00 USD"
    again = client.post("/v1/tenants/acme/credit-balance/refund", headers=OPERATOR)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "no_credit_balance")
    assert client.get("/v1/tenants/acme/credit-balance", headers=owner).json()["balances"] == []
