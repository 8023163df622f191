"""The customer credit balance, credit notes and refunds of the balance (docs/invoicing.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, BeforeValidator, Field

from farebox.entrypoints.api.deps import FB, Caller
from farebox.entrypoints.api.routers.invoices import InvoiceOut
from farebox.entrypoints.api.schemas import Body, json_integer
from farebox.invoicing.services import credits as service
from farebox.invoicing.services import invoices

router = APIRouter(prefix="/v1/tenants/{tenant_id}", tags=["invoices"])


class AmountOut(BaseModel):
    currency: str
    amount_minor: int
    amount: str


class CreditEntryOut(BaseModel):
    id: str
    kind: str
    currency: str
    amount_minor: int
    document_id: str | None
    refund_id: str | None
    cause: str
    created_at: datetime


class CreditRefundOut(BaseModel):
    id: str
    status: str
    currency: str
    amount_minor: int
    amount: str
    payment_attempt_id: str
    provider_ref: str | None
    failure_message: str | None
    created_at: datetime
    settled_at: datetime | None


class CreditBalanceOut(BaseModel):
    balances: list[AmountOut]
    entries: list[CreditEntryOut]
    refunds: list[CreditRefundOut]


class RefundIn(Body):

    currency: str | None = Field(default=None, pattern=r"^[A-Za-z]{3}$",
                                 description="Default: the currency with a balance")
    amount_minor: Annotated[int, Field(gt=0), BeforeValidator(json_integer)] | None = Field(
        default=None, description="Default: the whole balance"
    )


def _refund(r: Any) -> CreditRefundOut:
    return CreditRefundOut(id=r.id, status=r.status, currency=r.amount.currency, amount_minor=r.amount.amount_minor,
                           amount=r.amount.format(), payment_attempt_id=r.payment_attempt_id,
                           provider_ref=r.provider_ref, failure_message=r.failure_message, created_at=r.created_at,
                           settled_at=r.settled_at)


@router.get("/credit-balance", response_model=CreditBalanceOut,
            summary="The customer credit balance, its entries and refunds (owner, admin)")
def credit_balance(tenant_id: str, fb: FB, caller: Caller) -> CreditBalanceOut:
    b = service.credit_balance(fb, caller, tenant_id)
    return CreditBalanceOut(
        balances=[AmountOut(currency=m.currency, amount_minor=m.amount_minor, amount=m.format()) for m in b.balances],
        entries=[CreditEntryOut(id=e.id, kind=e.kind, currency=e.amount.currency, amount_minor=e.amount.amount_minor,
                                document_id=e.document_id, refund_id=e.refund_id, cause=e.cause,
                                created_at=e.created_at)
                 for e in b.entries],
        refunds=[_refund(r) for r in b.refunds],
    )


@router.post("/credit-balance/refund", response_model=list[CreditRefundOut],
             summary="Refund the credit balance to the card (operator); a refund left pending is sent again first")
def refund(tenant_id: str, fb: FB, caller: Caller, body: RefundIn | None = None) -> list[CreditRefundOut]:
    # Not under an Idempotency-Key: the provider is called between two transactions of its own (never inside
    # one), and a repeat cannot pay twice (the balance is taken first; a pending refund is resent with its key).
    body = body or RefundIn()
    done = service.refund_credit(fb, caller, tenant_id, currency=body.currency, amount_minor=body.amount_minor)
    return [_refund(r) for r in done]


@router.get("/credit-notes", response_model=list[InvoiceOut],
            summary="The tenant's credit notes, newest first (owner, admin)")
def credit_notes(tenant_id: str, fb: FB, caller: Caller) -> list[InvoiceOut]:
    return [InvoiceOut.of(i) for i in invoices.list_invoices(fb, caller, tenant_id, document="credit_note")]
