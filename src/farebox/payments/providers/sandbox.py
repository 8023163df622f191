"""The built-in sandbox provider: no network, test cards that behave like Stripe's.

| card number        | attaching | charging                                   |
|--------------------|-----------|--------------------------------------------|
| 4242 4242 4242 4242 | ok        | succeeds                                   |
| 4000 0000 0000 0002 | declined  | (never attached: `card_declined`)          |
| 4000 0000 0000 0341 | ok        | fails later: every charge declined         |
| 4000 0000 0000 9995 | ok        | fails: `insufficient_funds`                |

Tokens are either the card number (spaces allowed) or Stripe's test tokens
`pm_card_visa`, `pm_card_chargeDeclined`, `pm_card_chargeCustomerFail`.
Results depend only on the card and the idempotency key, so they are the same
in every process and every rerun.
"""

from __future__ import annotations

import hashlib

from farebox.kernel.money import Money
from farebox.payments.providers.base import CardInfo, ChargeResult, PaymentError, RefundResult

SUCCEEDS = "4242424242424242"
DECLINED = "4000000000000002"
FAILS_LATER = "4000000000000341"
INSUFFICIENT_FUNDS = "4000000000009995"

_TOKENS = {
    "pm_card_visa": SUCCEEDS,
    "tok_visa": SUCCEEDS,
    "pm_card_chargeDeclined": DECLINED,
    "pm_card_chargeCustomerFail": FAILS_LATER,
    "pm_card_chargeDeclinedInsufficientFunds": INSUFFICIENT_FUNDS,
}
_KNOWN = {SUCCEEDS, DECLINED, FAILS_LATER, INSUFFICIENT_FUNDS}
# a method reference names the card's behaviour, never its number (references are stored and exported)
_TAGS = {SUCCEEDS: "visa", FAILS_LATER: "chargecustomerfail", INSUFFICIENT_FUNDS: "insufficientfunds"}
_CARD_OF_TAG = {tag: number for number, tag in _TAGS.items()}


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


class SandboxProvider:
    name = "sandbox"

    def create_customer(self, *, tenant_id: str, email: str | None, name: str) -> str:
        return f"cus_sandbox_{_digest(tenant_id)}"

    def attach_payment_method(self, *, customer_ref: str, token: str) -> CardInfo:
        number = _TOKENS.get(token.strip(), token.replace(" ", "").replace("-", ""))
        if number not in _KNOWN:
            raise PaymentError(
                "invalid_card",
                "Unknown sandbox card: use 4242 4242 4242 4242 (succeeds), 4000 0000 0000 0002 (declined) or 4000 0000 "
                "0000 0341 (fails later).",
            )
        if number == DECLINED:
            raise PaymentError("card_declined", "Your card was declined.")
        return CardInfo(
            ref=f"pm_sandbox_{_TAGS[number]}_{_digest(customer_ref, number)[:8]}", brand="visa", last4=number[-4:]
        )

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
        ref = f"pi_sandbox_{_digest(idempotency_key)}"
        tag = payment_method_ref.split("_")[2] if payment_method_ref.startswith("pm_sandbox_") else ""
        number = _CARD_OF_TAG.get(tag, tag)  # references stored before the tags held the number
        if number == SUCCEEDS:
            return ChargeResult("succeeded", ref)
        if number == INSUFFICIENT_FUNDS:
            return ChargeResult("failed", ref, "insufficient_funds", "Your card has insufficient funds.")
        if number == FAILS_LATER:
            return ChargeResult("failed", ref, "card_declined", "Your card was declined.")
        return ChargeResult("failed", ref, "invalid_payment_method", "The payment method is not a sandbox card.")

    def refund(self, *, charge_ref: str, amount: Money, idempotency_key: str) -> RefundResult:
        return RefundResult("succeeded", f"re_sandbox_{_digest(idempotency_key)}")

    def checkout_link(self, *, customer_ref: str, success_url: str, cancel_url: str) -> str:
        return f"{success_url}?sandbox_checkout={customer_ref}"

    def portal_link(self, *, customer_ref: str, return_url: str) -> str:
        return f"{return_url}?sandbox_portal={customer_ref}"
