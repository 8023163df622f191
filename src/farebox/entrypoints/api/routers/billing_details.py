"""A tenant's billing details (G13; owner, admin, operator): read and change them."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter
from pydantic import BeforeValidator, Field

from farebox.entrypoints.api.deps import FB, Caller, IdempotencyKey, idempotent
from farebox.entrypoints.api.schemas import Body, json_integer
from farebox.invoicing.domain.billing_details import LIMITS, MAX_TAX_RATE_BP
from farebox.invoicing.services import billing_details as service

router = APIRouter(prefix="/v1/tenants/{tenant_id}/billing-details", tags=["tenants"])


class BillingDetailsIn(Body):
    """Only the fields sent change; `null` or "" clears a text field. Printed on invoices issued from now on."""

    billing_email: str | None = Field(
        default=None,
        max_length=LIMITS["billing_email"],
        examples=["finance@acme.example"],
    )
    legal_name: str | None = Field(default=None, max_length=LIMITS["legal_name"], examples=["Acme Webinars Ltd"])
    billing_address: str | None = Field(
        default=None, max_length=LIMITS["billing_address"], description="Postal address; lines separated by \\n"
    )
    tax_id: str | None = Field(default=None, max_length=LIMITS["tax_id"], examples=["GB123456789"])
    tax_rate_bp: Annotated[int, Field(ge=0, le=MAX_TAX_RATE_BP), BeforeValidator(json_integer)] | None = Field(
        default=None, description="Tax rate in basis points: 2000 = 20 %"
    )


@router.get("", response_model=service.BillingDetails, summary="Billing e-mail, name, address, tax (owner, admin)")
def get_details(tenant_id: str, fb: FB, caller: Caller):
    return service.get_billing_details(fb, caller, tenant_id)


@router.patch("", response_model=service.BillingDetails, summary="Change billing details (owner, admin)")
def update_details(tenant_id: str, body: BillingDetailsIn, fb: FB, caller: Caller, key: IdempotencyKey = None):
    changes = body.model_dump(include=body.model_fields_set)
    if "tax_rate_bp" in changes and changes["tax_rate_bp"] is None:
        changes["tax_rate_bp"] = 0
    return idempotent(
        fb,
        caller,
        key,
        {"op": "billing_details", "tenant": tenant_id, **changes},
        lambda: asdict(service.update_billing_details(fb, caller, tenant_id, changes)),
    )
