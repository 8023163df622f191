"""A tenant's pages: overview (team) and the audit log (owners and admins, G6).
The Billing tab and its actions are in `billing.py`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from farebox.entrypoints.portal.web import Session, fb_of, page
from farebox.kernel.access import require_billing_access
from farebox.records.services import audit
from farebox.tenants.services import tenants

router = APIRouter(prefix="/portal/t/{tenant_id}", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def overview(request: Request, tenant_id: str, current: Session):
    fb = fb_of(request)
    tenant = tenants.get_tenant(fb, current.principal, tenant_id)
    members = tenants.list_members(fb, current.principal, tenant_id)
    return page(request, "tenant_overview.html", current, tenant=tenant, members=members, tab="overview")


@router.get("/audit", response_class=HTMLResponse)
def audit_log(request: Request, tenant_id: str, current: Session):
    """Who changed what in this tenant: subscriptions, limits, members, keys (newest first)."""
    fb = fb_of(request)
    require_billing_access(current.principal, tenant_id)
    tenant = tenants.get_tenant(fb, current.principal, tenant_id)
    entries = audit.entries(fb, current.principal, tenant_id=tenant_id, limit=200)
    return page(request, "audit.html", current, tenant=tenant, entries=entries, tab="audit")
