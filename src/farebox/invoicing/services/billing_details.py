"""A tenant's billing details (G13): billing e-mail, legal name, postal address, tax id, tax rate.

Owners, admins and the operator read and change them (G6); every change is audited with
who made it and the fields before and after.  Invoices copy them when issued
(`domain.billing_details.bill_to`, the tax id and the tax rate), so a change applies
from the next invoice on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from farebox.bootstrap import Farebox
from farebox.invoicing.domain import billing_details as domain
from farebox.kernel import reasons
from farebox.kernel.access import Principal, require_billing_access
from farebox.kernel.reasons import DomainError
from farebox.records.services import audit
from farebox.tenants.db import tenants as repo


@dataclass(frozen=True, slots=True)
class BillingDetails:
    tenant_id: str
    billing_email: str | None
    legal_name: str | None
    billing_address: str | None
    tax_id: str | None
    tax_rate_bp: int  # 2000 = 20 %
    tax_rate_percent: str  # the same rate as text: "20", "7.25"


def _of(tenant: dict[str, Any]) -> BillingDetails:
    rate = int(tenant.get("tax_rate_bp") or 0)
    return BillingDetails(
        tenant["id"],
        tenant.get("billing_email"),
        tenant.get("legal_name"),
        tenant.get("billing_address"),
        tenant.get("tax_id"),
        rate,
        domain.bp_to_percent(rate),
    )


def get_billing_details(fb: Farebox, actor: Principal, tenant_id: str) -> BillingDetails:
    require_billing_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        tenant = repo.get_tenant(uow.conn, tenant_id)
    if tenant is None:
        raise DomainError(reasons.NOT_FOUND, what="Tenant")
    return _of(tenant)


def update_billing_details(fb: Farebox, actor: Principal, tenant_id: str, changes: dict[str, Any]) -> BillingDetails:
    """Set the fields given (None or "" clears a text field); the others stay as they are."""
    require_billing_access(actor, tenant_id)
    values, problems = domain.normalise(changes)
    if problems:
        first = problems[0]
        raise DomainError(
            reasons.VALIDATION_ERROR,
            detail=f"{first.field} {first.message}",
            details={"field": first.field, "problems": [{"field": p.field, "message": p.message} for p in problems]},
        )
    with fb.uow() as uow:
        tenant = repo.get_tenant(uow.conn, tenant_id, for_update=True)
        if tenant is None:
            raise DomainError(reasons.NOT_FOUND, what="Tenant")
        changed = {k: v for k, v in values.items() if tenant.get(k) != v}
        if changed:
            repo.update_tenant(uow.conn, tenant_id, **changed)
            audit.publish(
                uow,
                "tenant.billing_details_changed",
                tenant_id=tenant_id,
                at=fb.clock.now(),
                actor=actor,
                subject=tenant_id,
                before={k: tenant.get(k) for k in changed},
                after=changed,
            )
            tenant = {**tenant, **changed}
        uow.commit()
    return _of(tenant)
