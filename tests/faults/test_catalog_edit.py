"""Fault test (issue 9, G1, G15): the operator edits a catalog (new prices and limits) while
tenants are subscribed and mid-period.  Subscribed tenants keep their plan version: the
same price on their renewal invoice, the same limits and overage price on their usage.
New subscribers get the new version."""

from __future__ import annotations

from datetime import timedelta

import yaml
from fastapi.testclient import TestClient

from farebox.catalog.files import bundled_catalog_text
from farebox.clocks import service as clocks
from farebox.entrypoints.api.app import create_app
from farebox.invoicing.services import billing_run, invoices
from farebox.kernel.access import SYSTEM
from farebox.metering.services import usage
from farebox.subscriptions.services import subscriptions

from factories import clear_outbox, make_tenant

OPERATOR = {"Authorization": "Bearer test-operator-key"}


def _sessions(fb, tenant_id: str, n: int) -> None:
    client = TestClient(create_app(fb))
    for i in range(n):
        r = client.post(
            f"/v1/tenants/{tenant_id}/conversations/{tenant_id}-c{i}/messages",
            json={"from": "customer"},
            headers=OPERATOR,
        )
        assert r.status_code == 200 and r.json()["counted"], r.text


def _meter(fb, tenant_id: str):
    (meter,) = [m for m in usage.usage_summary(fb, SYSTEM, tenant_id).meters if m.meter == "sessions"]
    return meter


def test_G15_catalog_edited_while_subscribed_keeps_their_version_and_new_subscribers_get_the_new_one(fb):
    clock = clocks.create(fb, SYSTEM, name="edit", start=fb.clock.now())
    make_tenant(fb, tenant_id="acme", catalog="agent-sessions", plan="sme")
    clocks.attach(fb, SYSTEM, clock["id"], "acme")
    clear_outbox(fb, "acme")
    before = subscriptions.current(fb, SYSTEM, "acme")
    _sessions(fb, "acme", 3)

    edited = yaml.safe_load(bundled_catalog_text("agent-sessions"))
    edited["plans"]["sme"]["price"] = "175.00"
    edited["plans"]["sme"]["limits"]["sessions"].update(included=700, overage_unit_price="0.60")
    client = TestClient(create_app(fb))
    loaded = client.post("/v1/catalogs", json={"document": yaml.safe_dump(edited, sort_keys=False)}, headers=OPERATOR)
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["added"] == ["sme v2"]

    # the subscribed tenant, mid-period: nothing moved under it
    after = subscriptions.current(fb, SYSTEM, "acme")
    assert (after.id, after.plan_version_id, after.plan.price.amount_minor) == (
        before.id,
        before.plan_version_id,
        15000,
    )
    meter = _meter(fb, "acme")
    assert (meter.used, meter.included) == (3, 600)
    assert after.plan.limit("sessions").overage_unit_price.amount_minor == 50

    # its renewal, after the edit, is billed at its own version's price
    clocks.advance(fb, SYSTEM, clock["id"], to=before.period.end + timedelta(hours=1))
    billing_run.run(fb, SYSTEM)
    renewal = [i for i in invoices.list_invoices(fb, SYSTEM, "acme") if i.kind == "renewal"]
    assert len(renewal) == 1
    assert [(line.kind, line.amount.amount_minor) for line in renewal[0].lines if line.kind == "fee"] == [
        ("fee", 15000)
    ]
    renewed = subscriptions.current(fb, SYSTEM, "acme")
    assert renewed.plan_version_id == before.plan_version_id and _meter(fb, "acme").included == 600

    # a new subscriber gets the new version, price and limits
    make_tenant(fb, tenant_id="newco", catalog="agent-sessions", plan="sme")
    newco = subscriptions.current(fb, SYSTEM, "newco")
    assert newco.plan_version_id != before.plan_version_id
    assert (newco.plan.price.amount_minor, _meter(fb, "newco").included) == (17500, 700)
    (first,) = invoices.list_invoices(fb, SYSTEM, "newco")
    assert first.subtotal.amount_minor == 17500
