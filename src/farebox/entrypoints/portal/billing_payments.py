"""Invoices (PDF download) and the payment method on the Billing tab (G13, A7).

*+ Add payment method* opens the provider's hosted page (`payments.hosted_link`);
the sandbox provider's hosted page is a local one here, where a test card is
entered.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from farebox.entrypoints.portal.web import CsrfField, Session, check_csrf, fb_of, page, public_base, redirect
from farebox.invoicing.services import invoices as invoices_service
from farebox.kernel.access import require_billing_access
from farebox.kernel.reasons import DomainError
from farebox.payments import service as payments_service
from farebox.tenants.services import tenants

router = APIRouter(prefix="/portal/t/{tenant_id}/billing", include_in_schema=False)
SANDBOX_CARDS = (
    ("4242 4242 4242 4242", "succeeds"),
    ("4000 0000 0000 0341", "attaches, then every charge is declined"),
    ("4000 0000 0000 9995", "attaches, then charges fail: insufficient funds"),
    ("4000 0000 0000 0002", "declined when added"),
)


def _sandbox_page(request: Request, current, tenant_id: str, *, error=None) -> HTMLResponse:
    fb = fb_of(request)
    tenant = tenants.get_tenant(fb, current.principal, tenant_id)
    return page(request, "sandbox_hosted.html", current, tenant=tenant, cards=SANDBOX_CARDS, error=error, tab="billing")


@router.get("/invoices/{invoice_id}.pdf")
def invoice_pdf(request: Request, tenant_id: str, invoice_id: str, current: Session):
    require_billing_access(current.principal, tenant_id)
    fb = fb_of(request)
    invoice = invoices_service.get_invoice(fb, current.principal, tenant_id, invoice_id)
    data = invoices_service.invoice_pdf(fb, current.principal, tenant_id, invoice_id)
    name = (invoice.number or invoice_id).replace("/", "-")
    return Response(
        data, media_type="application/pdf", headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'}
    )


@router.post("/payment-method")
def open_hosted_page(request: Request, tenant_id: str, current: Session, csrf: CsrfField):
    """Redirect to the provider's hosted page; it comes back to the Billing tab."""
    check_csrf(current, csrf)
    require_billing_access(current.principal, tenant_id)
    sandbox = payments_service.provider(fb_of(request)).name == "sandbox"
    back = f"{public_base(request)}/portal/t/{tenant_id}/billing" + ("/payment-method/sandbox" if sandbox else "")
    link = payments_service.hosted_link(fb_of(request), current.principal, tenant_id, kind="portal", return_url=back)
    return RedirectResponse(link, status_code=303)

@router.get("/payment-method/sandbox", response_class=HTMLResponse)
def sandbox_hosted_page(request: Request, tenant_id: str, current: Session):
    """The sandbox provider's hosted page (a local page: no network)."""
    require_billing_access(current.principal, tenant_id)
    return _sandbox_page(request, current, tenant_id)

@router.post("/payment-method/sandbox", response_class=HTMLResponse)
def sandbox_add_card(
    request: Request, tenant_id: str, current: Session, csrf: CsrfField, card: Annotated[str, Form(max_length=40)]
):
    check_csrf(current, csrf)
    require_billing_access(current.principal, tenant_id)
    try:
        payments_service.add_payment_method(fb_of(request), current.principal, tenant_id, token=card.replace(" ", ""))
    except DomainError as exc:
        return _sandbox_page(request, current, tenant_id, error=exc.refusal)
    return redirect(f"/portal/t/{tenant_id}/billing?done=payment_method")
