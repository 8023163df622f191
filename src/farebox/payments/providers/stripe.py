"""The Stripe provider, on the official `stripe` library.

* charges are PaymentIntents confirmed off-session, each with the
  idempotency key farebox gives (`<billing key>:attempt:<n>`), so a retried
  transaction never charges twice;
* a refund (of a credit balance) is a Refund of one PaymentIntent, with the
  idempotency key farebox gives (`<payment attempt>:refund:<refund>`);
* a card is a PaymentMethod attached to the tenant's Customer;
* hosted pages: a Checkout Session in `setup` mode (to add a card) and a
  Billing Portal session;
* webhooks are verified with `Stripe-Signature` (`parse_webhook`).

Configuration: FAREBOX_STRIPE_API_KEY, FAREBOX_STRIPE_WEBHOOK_SECRET,
FAREBOX_STRIPE_TIMEOUT (seconds per request, default 30) and, for tests or a
proxy, FAREBOX_STRIPE_API_BASE (the library's api base address).
"""

from __future__ import annotations

import os
from typing import Any

import stripe
from stripe.params import CustomerCreateParams, PaymentIntentCreateParams
from stripe.params.checkout import SessionCreateParams

from farebox.kernel.money import Money
from farebox.payments.providers.base import CardInfo, ChargeResult, PaymentError, RefundResult

_STATUS = {
    "succeeded": "succeeded",
    "processing": "pending",
    "requires_action": "failed",
    "requires_payment_method": "failed",
    "canceled": "failed",
}


class StripeProvider:
    name = "stripe"

    def __init__(
        self, api_key: str, *, webhook_secret: str | None = None, api_base: str | None = None, timeout: float = 30.0
    ) -> None:
        # A request without an answer after `timeout` seconds, or whose connection was reset, is sent
        # again by the library (twice) with the same idempotency key, so the provider charges once.
        options: dict[str, Any] = {
            "max_network_retries": 2,
            "http_client": stripe.new_default_http_client(timeout=timeout),
        }
        if api_base:
            options["base_addresses"] = {"api": api_base}
        self.client = stripe.StripeClient(api_key, **options)
        self.webhook_secret = webhook_secret

    @classmethod
    def from_env(cls) -> StripeProvider:
        key = os.environ.get("FAREBOX_STRIPE_API_KEY")
        if not key:
            raise RuntimeError("FAREBOX_PAYMENT_PROVIDER=stripe needs FAREBOX_STRIPE_API_KEY")
        return cls(
            key,
            webhook_secret=os.environ.get("FAREBOX_STRIPE_WEBHOOK_SECRET"),
            api_base=os.environ.get("FAREBOX_STRIPE_API_BASE"),
            timeout=float(os.environ.get("FAREBOX_STRIPE_TIMEOUT", "30")),
        )

    def create_customer(self, *, tenant_id: str, email: str | None, name: str) -> str:
        params: CustomerCreateParams = {"name": name, "metadata": {"tenant_id": tenant_id}}
        if email:
            params["email"] = email
        return self.client.v1.customers.create(params, {"idempotency_key": f"customer:{tenant_id}"}).id

    def attach_payment_method(self, *, customer_ref: str, token: str) -> CardInfo:
        try:
            pm = self.client.v1.payment_methods.attach(token, {"customer": customer_ref})
        except stripe.CardError as exc:
            raise PaymentError(exc.code or "card_declined", exc.user_message or "Your card was declined.") from None
        except stripe.InvalidRequestError as exc:
            raise PaymentError(exc.code or "invalid_request", exc.user_message or str(exc)) from None
        card = pm.to_dict().get("card") or {}
        return CardInfo(ref=pm.id, brand=str(card.get("brand", "card")), last4=str(card.get("last4", "????")))

    def charge(
        self,
        *,
        customer_ref: str,
        payment_method_ref: str,
        amount: Money,
        idempotency_key: str,
        description: str,
        metadata: dict[str, str],
    ) -> ChargeResult:
        params: PaymentIntentCreateParams = {
            "amount": amount.amount_minor,
            "currency": amount.currency.lower(),
            "customer": customer_ref,
            "payment_method": payment_method_ref,
            "confirm": True,
            "off_session": True,
            "description": description,
            "metadata": metadata,
        }
        try:
            intent = self.client.v1.payment_intents.create(params, {"idempotency_key": idempotency_key})
        except stripe.APIConnectionError as exc:
            # No answer even after the library's retries: the charge may or may not exist.
            # `pending` without a reference makes farebox ask again later with the same key.
            return ChargeResult(
                "pending",
                None,
                "provider_unavailable",
                f"The payment provider did not answer: {exc.user_message or exc}"[:500],
            )
        except stripe.CardError as exc:
            intent_id = None
            if exc.error is not None and exc.error.payment_intent is not None:
                intent_id = getattr(exc.error.payment_intent, "id", None)
            return ChargeResult(
                "failed", intent_id, exc.code or "card_declined", exc.user_message or "Your card was declined."
            )
        status = _STATUS.get(intent.status, "pending")
        failure = intent.to_dict().get("last_payment_error") or {}
        return ChargeResult(
            status,
            intent.id,
            failure.get("code") if status == "failed" else None,
            failure.get("message") if status == "failed" else None,
        )

    def refund(self, *, charge_ref: str, amount: Money, idempotency_key: str) -> RefundResult:
        params = {"payment_intent": charge_ref, "amount": amount.amount_minor}
        try:
            refund = self.client.v1.refunds.create(params, {"idempotency_key": idempotency_key})  # type: ignore[arg-type]
        except stripe.APIConnectionError as exc:
            # No answer after the library's retries: the refund may exist; farebox sends it again with the same key.
            return RefundResult(
                "pending", None, f"The payment provider did not answer: {exc.user_message or exc}"[:500]
            )
        except stripe.StripeError as exc:  # refused: e.g. the charge is already refunded, or too little is left of it
            return RefundResult("failed", None, (exc.user_message or str(exc))[:500])
        if refund.status in ("succeeded", "pending"):  # pending: accepted, the bank has not confirmed yet
            return RefundResult("succeeded", refund.id)
        return RefundResult("failed", refund.id, str(refund.to_dict().get("failure_reason") or refund.status))

    def checkout_link(self, *, customer_ref: str, success_url: str, cancel_url: str) -> str:
        params: SessionCreateParams = {
            "mode": "setup",
            "customer": customer_ref,
            "payment_method_types": ["card"],  # type: ignore[typeddict-unknown-key]  # accepted by the API
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        session = self.client.v1.checkout.sessions.create(params)
        return str(session.url)

    def portal_link(self, *, customer_ref: str, return_url: str) -> str:
        return str(
            self.client.v1.billing_portal.sessions.create({"customer": customer_ref, "return_url": return_url}).url
        )

    def parse_webhook(self, payload: bytes, signature: str | None) -> Any:
        """The verified event as a dict, or `ValueError` when the signature is missing, stale or wrong."""
        if not self.webhook_secret:
            raise ValueError("no webhook secret configured")
        try:
            return stripe.Webhook.construct_event(payload, signature, self.webhook_secret).to_dict()
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise ValueError(str(exc)) from None
