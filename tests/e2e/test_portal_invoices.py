"""Invoices with PDF download and the payment method through the provider's hosted
page (the sandbox's is a local page) on the Billing tab (G13, G9, A7)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from farebox.entrypoints.api.app import create_app
from farebox.entrypoints.portal.web import SESSION_COOKIE
from farebox.kernel.access import SYSTEM, Principal, Role
from farebox.tenants.services import sign_in as portal_auth

from factories import make_tenant


@pytest.fixture
def owner(fb):
    with TestClient(create_app(fb), follow_redirects=False) as c:
        opened = portal_auth._open_session(fb, Principal(Role.OWNER, tenant_id="acme", email="owner@acme.test"))
        c.cookies.set(SESSION_COOKIE, opened.token)
        c.csrf = opened.csrf_token
        yield c


def test_G13_invoices_listed_with_a_pdf_download(fb, owner):
    from farebox.invoicing.services import invoices

    make_tenant(fb, tenant_id="acme", catalog="agent-sessions", plan="sme")
    issued = invoices.list_invoices(fb, SYSTEM, "acme")
    assert issued, "subscribing to a paid plan issues the first invoice (G13)"
    page = owner.get("/portal/t/acme/billing").text
    assert issued[0].number in page and "Download PDF" in page
    pdf = owner.get(f"/portal/t/acme/billing/invoices/{issued[0].id}.pdf")
    assert (
        pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    )


def test_payment_method_added_on_the_sandbox_hosted_page(fb, owner):
    make_tenant(fb, tenant_id="acme", catalog="agent-sessions", plan="sme")
    r = owner.post("/portal/t/acme/billing/payment-method", data={"csrf_token": owner.csrf})
    assert r.status_code == 303 and "/portal/t/acme/billing/payment-method/sandbox" in r.headers["location"]
    hosted = owner.get(r.headers["location"].replace("http://testserver", ""))
    assert hosted.status_code == 200 and "Sandbox billing portal" in hosted.text
    refused = owner.post(
        "/portal/t/acme/billing/payment-method/sandbox", data={"csrf_token": owner.csrf, "card": "4000 0000 0000 0002"}
    )
    assert 'data-code="payment_method_refused"' in refused.text
    r = owner.post(
        "/portal/t/acme/billing/payment-method/sandbox", data={"csrf_token": owner.csrf, "card": "4242 4242 4242 4242"}
    )
    assert r.status_code == 303
    page = owner.get(r.headers["location"]).text
    assert "Payment method added." in page and "4242" in page


def test_audit5_the_billing_tab_shows_the_credit_note_the_balance_and_the_credit_applied(fb, owner, clock):
    """Issue 14 #5: a downgrade's credit note and the balance, then the renewal with the credit applied and its amount
    due."""
    from farebox.events import due
    from farebox.invoicing.services import invoices
    from farebox.subscriptions.services import subscriptions as subs

    make_tenant(fb, tenant_id="acme", catalog="session-caps", plan="pro_plus")
    sub = subs.current(fb, SYSTEM, "acme")
    clock.set(sub.period.start + (sub.period.end - sub.period.start) / 2)
    subs.change_plan(fb, SYSTEM, "acme", plan="pro", when="immediately")
    _sign_in_again(fb, owner)  # the session of the fixture has expired on the moved clock
    page = owner.get("/portal/t/acme/billing").text
    assert "Credit note FB-CN-2026-000001" in page and "credited 15.00 USD" in page
    assert "Credit balance: <strong>15.00 USD</strong>" in page
    (note,) = invoices.list_invoices(fb, SYSTEM, "acme", document="credit_note")
    pdf = owner.get(f"/portal/t/acme/billing/invoices/{note.id}.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    clock.set(sub.period.end)
    due.run_due(fb)
    _sign_in_again(fb, owner)
    page = owner.get("/portal/t/acme/billing").text
    assert "Credit balance" not in page  # used up by the renewal
    row = next(line for line in page.split("<tr") if "FB-2026-000002" in line)
    assert "29.00 USD" in row and "-15.00 USD" in row and "14.00 USD" in row and "paid" in row


def _sign_in_again(fb, client) -> None:
    opened = portal_auth._open_session(fb, Principal(Role.OWNER, tenant_id="acme", email="owner@acme.test"))
    client.cookies.set(SESSION_COOKIE, opened.token)
    client.csrf = opened.csrf_token
