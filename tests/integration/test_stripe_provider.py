"""The Stripe provider on the official library, against a local fake of the Stripe API,
and its webhook verified with payloads signed here (G9, G13)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from farebox.entrypoints.api.app import create_app
from farebox.invoicing.services import invoices
from farebox.kernel.access import SYSTEM
from farebox.kernel.money import Money
from farebox.payments import service as payments
from farebox.payments.providers.stripe import StripeProvider
from farebox.subscriptions.services import subscriptions as subs

from factories import make_tenant
from fake_stripe import DECLINING_PM, FakeStripe, sign
from invoicing_support import publish
from support import billing_key

SECRET = "whsec_test_secret"


@pytest.fixture
def fake(fb):
    with FakeStripe() as server:
        fb.payment_provider = StripeProvider("sk_test_123", webhook_secret=SECRET, api_base=server.url)
        fb.usage_source = lambda conn, t, s, a, b: {}
        yield server


def _subscribe_and_bill(fb, token: str):
    make_tenant(fb, tenant_id="acme", card=None)
    payments.add_payment_method(fb, SYSTEM, "acme", token=token)
    sub = subs.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="pro", cause="test")
    publish(
        fb,
        "subscription.started",
        "acme",
        sub.id,
        {"status": "active", "period_start": sub.period.start.isoformat(), "period_end": sub.period.end.isoformat()},
    )
    (inv,) = invoices.list_invoices(fb, SYSTEM, "acme")
    return inv


def test_G13_stripe_charges_a_payment_intent_keyed_by_the_invoice_billing_key_and_attempt(fb, fake):
    inv = _subscribe_and_bill(fb, "pm_card_visa")
    assert inv.status == "paid"
    (charge,) = fake.charges()
    assert (
        charge["amount"],
        charge["currency"],
        charge["payment_method"],
        charge["confirm"],
        charge["off_session"],
    ) == ("2900", "usd", "pm_card_visa", "true", "true")
    keys = [key for _, path, _, key in fake.requests if path == "/v1/payment_intents"]
    assert keys == [f"{billing_key(fb, 'acme', inv.id)}:attempt:1"]  # audit #1: stable across a rerun
    (method,) = payments.list_payment_methods(fb, SYSTEM, "acme")
    assert (method.provider, method.brand, method.last4) == ("stripe", "visa", "4242")


def test_G4_same_idempotency_key_gives_the_same_payment_intent(fb, fake):
    provider = payments.provider(fb)
    first = provider.charge(
        customer_ref="cus_1",
        payment_method_ref="pm_card_visa",
        amount=Money(500, "EUR"),
        idempotency_key="k1",
        description="x",
        metadata={},
    )
    again = provider.charge(
        customer_ref="cus_1",
        payment_method_ref="pm_card_visa",
        amount=Money(500, "EUR"),
        idempotency_key="k1",
        description="x",
        metadata={},
    )
    assert first.ref == again.ref and first.succeeded


def test_G9_a_declined_stripe_charge_fails_the_invoice(fb, fake):
    inv = _subscribe_and_bill(fb, DECLINING_PM)
    assert inv.status == "open"
    (attempt,) = payments.attempts(fb, SYSTEM, "acme", inv.id)
    assert (attempt.status, attempt.failure_code) == ("failed", "card_declined")


def test_stripe_refund_checkout_and_portal_links(fb, fake):
    provider = payments.provider(fb)
    assert provider.refund(charge_ref="pi_1", amount=Money(100), idempotency_key="r1").status == "succeeded"
    make_tenant(fb, tenant_id="acme", card=None)
    assert payments.hosted_link(fb, SYSTEM, "acme", kind="checkout", return_url="https://app.test/billing").startswith(
        "https://checkout.stripe.test/"
    )
    assert payments.hosted_link(fb, SYSTEM, "acme", kind="portal", return_url="https://app.test/billing").startswith(
        "https://billing.stripe.test/"
    )
    modes = [params.get("mode") for _, path, params, _ in fake.requests if path == "/v1/checkout/sessions"]
    assert modes == ["setup"]


def test_G9_webhook_verifies_the_signature_and_settles_a_payment(fb, fake):
    inv = _subscribe_and_bill(fb, DECLINING_PM)
    (attempt,) = payments.attempts(fb, SYSTEM, "acme", inv.id)
    intent_id = [a for a in payments.attempts(fb, SYSTEM, "acme", inv.id)][0]
    with fb.uow(readonly=True) as uow:
        from farebox.payments import db as prepo

        ref = prepo.attempts(uow.conn, "acme", inv.id)[0]["provider_ref"]
    assert ref and intent_id
    event = {
        "id": "evt_1",
        "object": "event",
        "type": "payment_intent.succeeded",
        "data": {"object": {"id": ref, "object": "payment_intent", "status": "succeeded"}},
    }
    payload = json.dumps(event).encode()
    with TestClient(create_app(fb)) as client:
        bad = client.post(
            "/v1/webhooks/stripe", content=payload, headers={"Stripe-Signature": sign(payload, "whsec_wrong")}
        )
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "provider_signature_invalid"
        missing = client.post("/v1/webhooks/stripe", content=payload)
        assert missing.status_code == 400
        ok = client.post("/v1/webhooks/stripe", content=payload, headers={"Stripe-Signature": sign(payload, SECRET)})
        assert ok.status_code == 200, ok.text
    assert invoices.get_invoice(fb, SYSTEM, "acme", inv.id).status == "paid"


def test_webhook_payment_method_attached_records_the_card_and_retries_open_invoices(fb, fake):
    inv = _subscribe_and_bill(fb, DECLINING_PM)
    with fb.uow(readonly=True) as uow:
        from farebox.payments import db as prepo

        customer = prepo.customer_ref(uow.conn, "acme", "stripe")
    event = {
        "id": "evt_2",
        "object": "event",
        "type": "payment_method.attached",
        "data": {
            "object": {
                "id": "pm_card_visa",
                "object": "payment_method",
                "customer": customer,
                "card": {"brand": "visa", "last4": "4242"},
            }
        },
    }
    payload = json.dumps(event).encode()
    with TestClient(create_app(fb)) as client:
        r = client.post("/v1/webhooks/stripe", content=payload, headers={"Stripe-Signature": sign(payload, SECRET)})
        assert r.status_code == 200, r.text
    assert invoices.get_invoice(fb, SYSTEM, "acme", inv.id).status == "paid"


def test_G4_a_replayed_provider_event_answers_as_the_first_time_and_changes_nothing(fb, fake):
    """Issue 14 item 4: webhooks are deduplicated by event id.  A late replay of an old
    `payment_failed` must not turn the attempt that later succeeded back into a failure."""
    inv = _subscribe_and_bill(fb, DECLINING_PM)
    with fb.uow(readonly=True) as uow:
        from farebox.payments import db as prepo

        ref = prepo.attempts(uow.conn, "acme", inv.id)[0]["provider_ref"]

    def event(event_id: str, kind: str) -> bytes:
        return json.dumps(
            {
                "id": event_id,
                "object": "event",
                "type": kind,
                "data": {"object": {"id": ref, "object": "payment_intent"}},
            }
        ).encode()

    failed, succeeded = event("evt_f", "payment_intent.payment_failed"), event("evt_s", "payment_intent.succeeded")
    with TestClient(create_app(fb)) as client:

        def post(payload):
            return client.post(
                "/v1/webhooks/stripe", content=payload, headers={"Stripe-Signature": sign(payload, SECRET)}
            )

        first = post(failed)
        assert post(succeeded).status_code == 200
        replay = post(failed)
    assert replay.status_code == 200 and replay.json() == first.json()
    assert invoices.get_invoice(fb, SYSTEM, "acme", inv.id).status == "paid"
    assert [a.status for a in payments.attempts(fb, SYSTEM, "acme", inv.id)] == ["succeeded"]


def test_audit5_a_refund_is_a_stripe_refund_of_the_payment_intent_with_our_idempotency_key(fb, fake):
    provider = payments.provider(fb)
    first = provider.refund(charge_ref="pi_fake0007", amount=Money(1500, "USD"), idempotency_key="pay_1:refund:ref_1")
    assert (first.status, first.ref) == ("succeeded", first.ref) and first.ref.startswith("re_")
    (_, path, params, key), = [r for r in fake.requests if r[1] == "/v1/refunds"]
    assert (params["payment_intent"], params["amount"], key) == ("pi_fake0007", "1500", "pay_1:refund:ref_1")
    again = provider.refund(charge_ref="pi_fake0007", amount=Money(1500, "USD"), idempotency_key="pay_1:refund:ref_1")
    assert again == first  # the same key: Stripe answers the first refund again, nothing is paid twice
    refused = provider.refund(charge_ref="pi_fake0007", amount=Money(100, "USD"), idempotency_key="pay_1:refund:ref_2")
    assert refused.status == "failed" and "already been refunded" in (refused.failure_message or "")


def test_audit5_a_refund_stripe_never_answers_is_pending_to_be_sent_again():
    nobody = StripeProvider("sk_test_123", api_base="http://127.0.0.1:9", timeout=0.5)  # nothing listens on port 9
    result = nobody.refund(charge_ref="pi_1", amount=Money(1500, "USD"), idempotency_key="pay_1:refund:ref_1")
    assert (result.status, result.ref) == ("pending", None) and "did not answer" in (result.failure_message or "")
