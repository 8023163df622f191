"""Issue 17 F15: the small ones the probe found."""

from __future__ import annotations

from fastapi.testclient import TestClient

from farebox.entrypoints.api.app import create_app
from farebox.invoicing.services import invoices
from farebox.kernel.access import SYSTEM, Role
from farebox.metering.services import admission, usage
from farebox.payments import service as payments
from farebox.records.services import export
from farebox.tenants.services import tenants

from factories import make_tenant

OPERATOR = {"Authorization": "Bearer test-operator-key"}


def test_F15_another_tenants_invoice_payments_answer_404_like_every_invoice_route(fb):
    make_tenant(fb, tenant_id="acme", catalog="session-caps", plan="pro")
    make_tenant(fb, tenant_id="globex", catalog="session-caps", plan="pro")
    theirs = invoices.list_invoices(fb, SYSTEM, "globex")[0].id
    owner = {"Authorization": f"Bearer {tenants.issue_api_key(fb, SYSTEM, tenant_id='acme', role=Role.OWNER).secret}"}
    with TestClient(create_app(fb)) as client:
        for suffix in ("", "/payments", "/pdf"):
            r = client.get(f"/v1/tenants/acme/invoices/{theirs}{suffix}", headers=owner)
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (suffix, r.text[:200])
        ours = invoices.list_invoices(fb, SYSTEM, "acme")[0].id
        assert client.get(f"/v1/tenants/acme/invoices/{ours}/payments", headers=owner).status_code == 200


def test_F15_the_sandbox_never_stores_a_card_number_in_a_method_reference(fb, tmp_path):
    make_tenant(fb, tenant_id="acme", card=None)
    for card in ("4242 4242 4242 4242", "4000000000000341", "4000 0000 0000 9995"):
        payments.add_payment_method(fb, SYSTEM, "acme", token=card)
    export.export_to_directory(fb, SYSTEM, "acme", tmp_path / "out")
    exported = "".join(p.read_text() for p in (tmp_path / "out").iterdir() if p.is_file())
    assert "pm_sandbox_" in exported
    for number in ("4242424242424242", "4000000000000341", "4000000000009995"):
        assert number not in exported


def test_F15_the_sandbox_still_charges_each_card_as_documented(fb):
    make_tenant(fb, tenant_id="good", catalog="session-caps", plan="pro")
    make_tenant(fb, tenant_id="bad", catalog="session-caps", plan="pro", card="4000000000000341")
    assert invoices.list_invoices(fb, SYSTEM, "good")[0].status == "paid"
    assert invoices.list_invoices(fb, SYSTEM, "bad")[0].status == "open"


def test_F15_a_per_occurrence_meter_shows_its_fullest_occurrence_not_a_sum(fb):
    make_tenant(fb, tenant_id="acme", catalog="session-caps", plan="pro")
    for occurrence, people in (("o1", 40), ("o2", 30), ("o3", 30)):
        for i in range(people):
            admission.join(fb, SYSTEM, "acme", occurrence, f"{occurrence}-p{i}")
    attendees = next(m for m in usage.usage_summary(fb, SYSTEM, "acme").meters if m.meter == "attendees")
    assert attendees.used == 40 and attendees.included == 500
