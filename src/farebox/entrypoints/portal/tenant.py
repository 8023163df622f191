"""A tenant's pages: overview (team) and the Billing tab (owners and admins only, G6)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from farebox.domain.access import require_billing_access
from farebox.entrypoints.portal.web import Session, fb_of, page
from farebox.services import catalog, subscriptions, tenants

router = APIRouter(prefix="/portal/t/{tenant_id}", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def overview(request: Request, tenant_id: str, current: Session):
    fb = fb_of(request)
    tenant = tenants.get_tenant(fb, current.principal, tenant_id)
    members = tenants.list_members(fb, current.principal, tenant_id)
    return page(request, "tenant_overview.html", current, tenant=tenant, members=members, tab="overview")


@router.get("/billing", response_class=HTMLResponse)
def billing(request: Request, tenant_id: str, current: Session):
    fb = fb_of(request)
    require_billing_access(current.principal, tenant_id)
    tenant = tenants.get_tenant(fb, current.principal, tenant_id)
    subscription = subscriptions.current(fb, current.principal, tenant_id)
    plans = []
    if subscription is not None:
        plans = next((c["plans"] for c in catalog.list_catalogs(fb) if c["name"] == subscription.catalog), [])
    return page(request, "billing.html", current, tenant=tenant, subscription=subscription, plans=plans, tab="billing")
