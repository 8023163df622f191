"""Fault tests (issue 9, G4, G9, G13): the payment provider times out or resets the connection.

The fake Stripe API (tests/fake_stripe.py) is made to do the work and then lose the
answer: it charges, stores the answer under the idempotency key, and then answers too
late (after the client's timeout) or closes the connection.  farebox, through the real
`stripe` library, must end with the invoice paid once and one PaymentIntent at the
provider, never two."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from farebox.events import due
from farebox.invoicing.services import billing_run, invoices
from farebox.kernel.access import SYSTEM
from farebox.payments import service as payments
from farebox.payments.providers.stripe import StripeProvider
from farebox.subscriptions.services import subscriptions

from factories import make_tenant
from fake_stripe import FakeStripe
from support import billing_key

TIMEOUT = 0.5  # seconds the client waits for an answer


class FlakyStripe(FakeStripe):
    """Charges, then loses the answer of the first `faults` charge requests (new or replayed with
    the same key): `slow` answers after the client gave up, `reset` closes the connection."""

    def __init__(self, fault: str, faults: int) -> None:
        super().__init__()
        self.fault, self.faults = fault, faults
        self.intents: list[dict[str, Any]] = []  # every PaymentIntent the provider created
        self.by_key = _Remembered(self)

    def route(self, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        status, body = super().route(path, params)
        if path == "/v1/payment_intents":
            self.intents.append(body)
            key = self.requests[-1][3]
            if key:
                dict.__setitem__(self.by_key, key, (status, body))  # the provider did the work and remembers the key
            self.lose_the_answer()
        return status, body

    def lose_the_answer(self) -> None:
        if self.faults > 0:
            self.faults -= 1
            if self.fault == "slow":
                time.sleep(TIMEOUT * 3)
            else:
                raise ConnectionResetError("the provider dropped the connection")


class _Remembered(dict):
    """The fake's idempotency store: a replayed charge can lose its answer too."""

    def __init__(self, fake: FlakyStripe) -> None:
        super().__init__()
        self.fake = fake

    def __getitem__(self, key: str) -> tuple[int, dict[str, Any]]:
        answer = super().__getitem__(key)
        if answer[1].get("object") == "payment_intent":
            self.fake.lose_the_answer()
        return answer


@pytest.fixture
def flaky(request, fb):
    with FlakyStripe(*request.param) as server:
        fb.payment_provider = StripeProvider("sk_test_123", api_base=server.url, timeout=TIMEOUT)
        yield server


def _subscribe(fb) -> None:
    make_tenant(fb, tenant_id="acme", card=None)
    payments.add_payment_method(fb, SYSTEM, "acme", token="pm_card_visa")
    subscriptions.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="pro", cause="test")


def _charged_once(fb, flaky) -> None:
    (invoice,) = invoices.list_invoices(fb, SYSTEM, "acme")
    assert invoice.status == "paid"
    (attempt,) = payments.attempts(fb, SYSTEM, "acme", invoice.id)
    assert attempt.status == "succeeded" and attempt.failure_code is None
    assert len(flaky.intents) == 1, flaky.intents  # one charge at the provider
    assert attempt.amount.amount_minor == flaky.intents[0]["amount"] == 2900
    keys = [key for _, path, _, key in flaky.requests if path == "/v1/payment_intents"]
    assert len(keys) >= 2 and set(keys) == {
        f"{billing_key(fb, 'acme', invoice.id)}:attempt:1"
    }  # every retry reused the key
    assert subscriptions.current(fb, SYSTEM, "acme").status.value == "active"


@pytest.mark.parametrize(
    "flaky",
    [("slow", 1), ("slow", 2), ("reset", 1), ("reset", 2)],
    indirect=True,
    ids=["slow-once", "slow-twice", "reset-once", "reset-twice"],
)
def test_G4_provider_answer_lost_within_the_client_retries_charges_once(fb, flaky):
    """The library sends the charge again with the same key; the provider returns the first answer."""
    _subscribe(fb)
    billing_run.run(fb, SYSTEM)
    billing_run.run(fb, SYSTEM)  # a second pass finds nothing to bill
    _charged_once(fb, flaky)


@pytest.mark.parametrize(
    "flaky", [("slow", 3), ("reset", 3), ("reset", 5)], indirect=True, ids=["slow-3", "reset-3", "reset-5"]
)
def test_G4_provider_down_longer_than_the_client_retries_charges_once_later(fb, flaky):
    """No answer at all: subscribing still issues the invoice (nothing raised, nothing rolled
    back), records the attempt as unanswered, and asks again later with the same key."""
    _subscribe(fb)
    (invoice,) = invoices.list_invoices(fb, SYSTEM, "acme")
    assert invoice.status == "open"
    (attempt,) = payments.attempts(fb, SYSTEM, "acme", invoice.id)
    assert (attempt.status, attempt.failure_code) == ("pending", "provider_unavailable")
    assert billing_run.run(fb, SYSTEM).invoiced == 0  # not issued again
    for _ in range(3):  # the resend falls due 10 minutes later; it may find the provider down again
        fb.clock.advance(timedelta(minutes=10))
        due.run_due(fb)
    _charged_once(fb, flaky)
