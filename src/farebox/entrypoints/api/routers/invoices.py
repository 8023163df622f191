"""Invoices, payment methods, hosted payment links and the provider webhook (G6, G9, G13)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from pydantic import BaseModel, BeforeValidator, Field
from starlette.concurrency import run_in_threadpool

from farebox.entrypoints.api.deps import FB, Caller, IdempotencyKey, idempotent
from farebox.entrypoints.api.schemas import EMAIL_PATTERN, Body, ErrorOut, json_integer
from farebox.invoicing.services import invoices as service
from farebox.payments import service as payments

router = APIRouter(prefix="/v1/tenants/{tenant_id}", tags=["invoices"])
webhooks = APIRouter(prefix="/v1/webhooks", tags=["invoices"])


class InvoiceLineOut(BaseModel):
    kind: str
    description: str
    quantity: int
    unit_amount_minor: int
    amount_minor: int
    period_start_at: datetime
    period_end_at: datetime
    service_start_at: datetime
    service_end_at: datetime


class InvoiceOut(BaseModel):
    id: str | None
    number: str | None
    tenant_id: str
    subscription_id: str
    kind: str
    document: str  # invoice | credit_note
    status: str
    currency: str
    subtotal_minor: int
    tax_rate_bp: int
    tax_minor: int
    total_minor: int
    total: str
    credit_applied_minor: int  # the credit balance set against the total when issued
    amount_due_minor: int  # the total less the credit applied: what is charged
    amount_due: str
    tax_id: str | None
    bill_to: dict[str, str | None] = Field(default_factory=dict, description="Name, e-mail, address at issue")
    period_start_at: datetime
    period_end_at: datetime
    issued_at: datetime
    paid_at: datetime | None
    lines: list[InvoiceLineOut]

    @classmethod
    def of(cls, inv: Any) -> InvoiceOut:
        return cls(
            id=inv.id,
            number=inv.number,
            tenant_id=inv.tenant_id,
            subscription_id=inv.subscription_id,
            kind=inv.kind,
            document=inv.document,
            status=inv.status,
            currency=inv.currency,
            subtotal_minor=inv.subtotal.amount_minor,
            tax_rate_bp=inv.tax_rate_bp,
            tax_minor=inv.tax.amount_minor,
            total_minor=inv.total.amount_minor,
            total=inv.total.format(),
            credit_applied_minor=_minor(inv.credit_applied),
            amount_due_minor=_minor(inv.amount_due),
            amount_due=(inv.amount_due or inv.total).format(),
            tax_id=inv.tax_id,
            period_start_at=inv.period_start_at,
            bill_to=dict(inv.bill_to),
            period_end_at=inv.period_end_at,
            issued_at=inv.issued_at,
            paid_at=inv.paid_at,
            lines=[
                InvoiceLineOut(
                    kind=x.kind,
                    description=x.description,
                    quantity=x.quantity,
                    unit_amount_minor=x.unit_amount.amount_minor,
                    amount_minor=x.amount.amount_minor,
                    period_start_at=x.period_start_at,
                    period_end_at=x.period_end_at,
                    service_start_at=x.service_start_at,
                    service_end_at=x.service_end_at,
                )
                for x in inv.lines
            ],
        )


def _minor(money: Any) -> int:
    return money.amount_minor if money is not None else 0


class PaymentMethodIn(BaseModel):
    token: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00]+$",
        description="A provider token (Stripe pm_...) or, on the sandbox, a test card number",
    )


class PaymentMethodOut(BaseModel):
    id: str
    provider: str
    brand: str
    last4: str
    is_default: bool
    created_at: datetime


class PaymentAttemptOut(BaseModel):
    id: str
    invoice_id: str
    attempt: int
    status: str
    amount_minor: int
    currency: str
    failure_code: str | None
    failure_message: str | None
    created_at: datetime


class VoidIn(Body):
    # at least one character that no flavour of `\s` (Python's strip, JSON Schema's ECMAScript) calls a space
    reason: str = Field(
        min_length=1,
        max_length=500,
        pattern=r"^[^\x00]*[^\s\x00\x1c-\x1f\x85\ufeff][^\x00]*$",
        description="Why the invoice is voided (audited)",
    )


class PaymentTermsIn(Body):
    bank_transfer_days: Annotated[int, Field(ge=0, le=365), BeforeValidator(json_integer)] | None = Field(
        default=None,
        description="Invoice by bank transfer, due this many days after issue (never charged); null: charge the "
                    "payment method",
    )


class EmailIn(BaseModel):
    to: str = Field(min_length=3, max_length=254, pattern=EMAIL_PATTERN)


class EmailOut(BaseModel):
    sent_to: str


class LinkIn(BaseModel):
    kind: Literal["checkout", "portal"]
    return_url: str = Field(min_length=1, max_length=2000, pattern=r"^https?://[^\s\x00-\x20\x7f-\x9f]+$")


class LinkOut(BaseModel):
    url: str


_PAYMENT: dict[int | str, dict[str, Any]] = {402: {"model": ErrorOut, "description": "The payment method was refused"}}


def _attempt(a: Any) -> PaymentAttemptOut:
    return PaymentAttemptOut(
        id=a.id,
        invoice_id=a.invoice_id,
        attempt=a.attempt,
        status=a.status,
        amount_minor=a.amount.amount_minor,
        currency=a.amount.currency,
        failure_code=a.failure_code,
        failure_message=a.failure_message,
        created_at=a.created_at,
    )


@router.get("/invoices", response_model=list[InvoiceOut], summary="The tenant's invoices, newest first (owner, admin)")
def list_invoices(tenant_id: str, fb: FB, caller: Caller, status: Literal["open", "paid", "void"] | None = None):
    return [InvoiceOut.of(i) for i in service.list_invoices(fb, caller, tenant_id, status=status)]


@router.get(
    "/invoices/preview", response_model=InvoiceOut | None, summary="A dry run of the next invoice (nothing saved)"
)
def preview(tenant_id: str, fb: FB, caller: Caller):
    draft = service.preview_next_invoice(fb, caller, tenant_id)
    return InvoiceOut.of(draft) if draft else None


@router.get("/invoices/{invoice_id}", response_model=InvoiceOut, summary="One invoice with its lines (owner, admin)")
def get_invoice(tenant_id: str, invoice_id: str, fb: FB, caller: Caller):
    return InvoiceOut.of(service.get_invoice(fb, caller, tenant_id, invoice_id))


@router.get("/invoices/{invoice_id}/pdf", response_class=Response, summary="The invoice as a PDF (owner, admin)",
            responses={200: {"content": {"application/pdf": {}}, "description": "The PDF"}})
def invoice_pdf(tenant_id: str, invoice_id: str, fb: FB, caller: Caller):
    pdf = service.invoice_pdf(fb, caller, tenant_id, invoice_id)
    number = service.get_invoice(fb, caller, tenant_id, invoice_id).number
    return Response(
        pdf, media_type="application/pdf", headers={"Content-Disposition": f'attachment; filename="{number}.pdf"'}
    )


@router.post(
    "/invoices/{invoice_id}/pay",
    response_model=PaymentAttemptOut,
    summary="Charge an open invoice now (owner, admin)",
    responses=_PAYMENT,
)
def pay(tenant_id: str, invoice_id: str, fb: FB, caller: Caller, key: IdempotencyKey = None):
    return idempotent(
        fb,
        caller,
        key,
        {"pay": invoice_id, "tenant": tenant_id},
        lambda: _attempt(payments.pay_invoice(fb, caller, tenant_id, invoice_id)),
    )


@router.post(
    "/invoices/{invoice_id}/email",
    response_model=EmailOut,
    summary="E-mail the invoice to an extra recipient (owner, admin)",
)
def email(tenant_id: str, invoice_id: str, body: EmailIn, fb: FB, caller: Caller):
    return EmailOut(sent_to=service.email_invoice(fb, caller, tenant_id, invoice_id, to=body.to))


@router.post(
    "/invoices/{invoice_id}/void",
    response_model=InvoiceOut,
    summary="Void an open invoice (operator, saying why); it keeps its number, and a subscription with nothing else "
            "overdue leaves Payment issue",
)
def void(tenant_id: str, invoice_id: str, body: VoidIn, fb: FB, caller: Caller):
    return InvoiceOut.of(service.void_invoice(fb, caller, tenant_id, invoice_id, reason=body.reason))


@router.get(
    "/invoices/{invoice_id}/payments",
    response_model=list[PaymentAttemptOut],
    summary="Payment attempts of an invoice (owner, admin)",
)
def invoice_payments(tenant_id: str, invoice_id: str, fb: FB, caller: Caller):
    return [_attempt(a) for a in payments.attempts(fb, caller, tenant_id, invoice_id)]


@router.get("/payment-methods", response_model=list[PaymentMethodOut], summary="Payment methods on file (owner, admin)")
def list_methods(tenant_id: str, fb: FB, caller: Caller):
    return [PaymentMethodOut(**m.__dict__) for m in payments.list_payment_methods(fb, caller, tenant_id)]


@router.post(
    "/payment-methods",
    response_model=PaymentMethodOut,
    status_code=201,
    summary="Add a card as the default; open invoices are retried with it",
    responses=_PAYMENT,
)
def add_method(tenant_id: str, body: PaymentMethodIn, fb: FB, caller: Caller, key: IdempotencyKey = None):
    card = payments.attach_card(fb, caller, tenant_id, token=body.token)  # the provider, before any transaction opens
    return idempotent(
        fb,
        caller,
        key,
        {"tenant": tenant_id, **body.model_dump()},
        lambda: PaymentMethodOut(**payments.record_payment_method(fb, caller, tenant_id, card).__dict__),
        status_code=201,
    )


@router.put(
    "/payment-terms",
    response_model=PaymentTermsIn,
    summary="Invoice the tenant by bank transfer, or charge its card again (operator)",
)
def payment_terms(tenant_id: str, body: PaymentTermsIn, fb: FB, caller: Caller):
    return PaymentTermsIn(
        bank_transfer_days=payments.set_bank_transfer(fb, caller, tenant_id, terms_days=body.bank_transfer_days)
    )


@router.post(
    "/payment-links",
    response_model=LinkOut,
    summary="A hosted checkout (add a card) or billing-portal link of the provider",
)
def payment_link(tenant_id: str, body: LinkIn, fb: FB, caller: Caller):
    return LinkOut(url=payments.hosted_link(fb, caller, tenant_id, kind=body.kind, return_url=body.return_url))


@webhooks.post(
    "/{provider}",
    summary="A payment provider's webhook (Stripe: verified with Stripe-Signature)",
    responses={400: {"model": ErrorOut, "description": "Missing or wrong signature"}},
)
async def provider_webhook(
    provider: str,
    request: Request,
    fb: FB,
    stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> dict[str, str]:
    payload = await request.body()
    outcome = await run_in_threadpool(payments.handle_webhook, fb, provider, payload, stripe_signature)
    return {"outcome": outcome}
