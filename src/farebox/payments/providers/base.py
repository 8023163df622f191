"""The payment provider port: what farebox asks of Stripe or of the sandbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from farebox.kernel.money import Money


@dataclass(frozen=True, slots=True)
class CardInfo:
    ref: str  # the provider's id of the payment method (pm_...)
    brand: str
    last4: str


@dataclass(frozen=True, slots=True)
class ChargeResult:
    status: str  # succeeded | failed | pending
    ref: str | None  # the provider's id of the charge (pi_...)
    failure_code: str | None = None
    failure_message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


@dataclass(frozen=True, slots=True)
class RefundResult:
    status: str  # succeeded | failed | pending (no answer: send again with the same key)
    ref: str | None  # the provider's id of the refund (re_...)
    failure_message: str | None = None


class PaymentError(Exception):
    """A payment method could not be attached (declined card, unknown token...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class PaymentProvider(Protocol):
    """Every call that moves money takes an idempotency key: the same key
    gives the same result, so a retried transaction never charges twice."""

    name: str

    def create_customer(self, *, tenant_id: str, email: str | None, name: str) -> str: ...

    def attach_payment_method(self, *, customer_ref: str, token: str) -> CardInfo: ...

    def charge(
        self,
        *,
        customer_ref: str,
        payment_method_ref: str,
        amount: Money,
        idempotency_key: str,
        description: str,
        metadata: dict[str, str],
    ) -> ChargeResult: ...

    def refund(self, *, charge_ref: str, amount: Money, idempotency_key: str) -> RefundResult:
        """Give `amount` of a charge (its `ChargeResult.ref`) back to the card it came from."""
        ...

    def checkout_link(self, *, customer_ref: str, success_url: str, cancel_url: str) -> str: ...

    def portal_link(self, *, customer_ref: str, return_url: str) -> str: ...
