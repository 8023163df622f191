"""The operator console: tenants (state, usage, MRR), catalogs and plans, test clocks,
webhook deliveries, billing runs and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse

from farebox.alerts.services import delivery
from farebox.catalog import service as catalog
from farebox.clocks import service as clocks
from farebox.entrypoints.portal.console_view import usage_line
from farebox.entrypoints.portal.web import CsrfField, Session, check_csrf, fb_of, page, redirect
from farebox.invoicing.services import billing_run
from farebox.kernel.access import require_operator
from farebox.kernel.periods import parse_duration
from farebox.kernel.reasons import DomainError
from farebox.records.services import audit
from farebox.tenants.services import overview as tenant_overview

router = APIRouter(prefix="/portal/console", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def tenants_page(request: Request, current: Session, q: Annotated[str | None, Query(max_length=100)] = None):
    overview = tenant_overview.tenant_overview(fb_of(request), current.principal, search=q, limit=200)
    rows = [
        {"tenant": r.tenant, "subscription": r.subscription, "usage": usage_line(r.usage), "mrr": r.mrr}
        for r in overview.rows
    ]
    totals = {currency: mrr.format() for currency, mrr in overview.mrr_totals.items()}
    return page(request, "console_tenants.html", current, rows=rows, totals=totals, q=q or "", tab="tenants")


@router.get("/catalogs", response_class=HTMLResponse)
def catalogs_page(request: Request, current: Session):
    require_operator(current.principal)
    return page(
        request, "console_catalogs.html", current, catalogs=catalog.list_catalogs(fb_of(request)), tab="catalogs"
    )


@router.get("/clocks", response_class=HTMLResponse)
def clocks_page(request: Request, current: Session, error: str | None = None, report=None):
    fb = fb_of(request)
    require_operator(current.principal)
    rows = [clocks.get(fb, current.principal, c["id"]) for c in clocks.list_all(fb, current.principal)]
    return page(request, "console_clocks.html", current, clocks=rows, error=error, report=report, tab="clocks")


@router.post("/clocks", response_class=HTMLResponse)
def create_clock(
    request: Request, current: Session, csrf: CsrfField, name: Annotated[str, Form(min_length=1, max_length=200)]
):
    check_csrf(current, csrf)
    clocks.create(fb_of(request), current.principal, name=name)
    return redirect("/portal/console/clocks")


@router.post("/clocks/{clock_id}/tenants", response_class=HTMLResponse)
def attach(
    request: Request, clock_id: str, current: Session, csrf: CsrfField, tenant_id: Annotated[str, Form(max_length=63)]
):
    check_csrf(current, csrf)
    try:
        clocks.attach(fb_of(request), current.principal, clock_id, tenant_id.strip())
    except DomainError as exc:
        return clocks_page(request, current, error=exc.refusal.message)
    return redirect("/portal/console/clocks")


@router.post("/clocks/{clock_id}/advance", response_class=HTMLResponse)
def advance(
    request: Request, clock_id: str, current: Session, csrf: CsrfField, by: Annotated[str, Form(max_length=20)]
):
    check_csrf(current, csrf)
    try:
        report = clocks.advance(fb_of(request), current.principal, clock_id, by=parse_duration(by.strip()))
    except ValueError:
        return clocks_page(request, current, error=f"{by!r} is not a duration (e.g. 36h, 30d, 1h30m).")
    except DomainError as exc:
        return clocks_page(request, current, error=exc.refusal.message)
    return clocks_page(request, current, report=report)


@router.get("/deliveries", response_class=HTMLResponse)
def deliveries_page(
    request: Request,
    current: Session,
    status: Annotated[str | None, Query(max_length=20)] = None,
    channel: Annotated[str | None, Query(max_length=20)] = None,
    replayed: str | None = None,
):
    require_operator(current.principal)
    found = delivery.list_deliveries(
        fb_of(request), current.principal, status=status or None, channel=channel or None, limit=500
    )
    found = sorted(found, key=lambda d: d.created_at, reverse=True)
    return page(
        request,
        "console_deliveries.html",
        current,
        deliveries=found,
        status=status or "",
        channel=channel or "",
        replayed=replayed,
        tab="deliveries",
    )


@router.post("/deliveries/{delivery_id}/replay")
def replay_delivery(request: Request, delivery_id: str, current: Session, csrf: CsrfField):
    check_csrf(current, csrf)
    delivery.replay(fb_of(request), current.principal, delivery_id)
    return redirect(f"/portal/console/deliveries?replayed={delivery_id}")


@router.get("/billing-runs", response_class=HTMLResponse)
def billing_runs_page(request: Request, current: Session, report=None):
    require_operator(current.principal)
    due = billing_run.due_count(fb_of(request))
    return page(request, "console_billing_runs.html", current, due=due, report=report, tab="billing-runs")


@router.post("/billing-runs", response_class=HTMLResponse)
def run_billing(request: Request, current: Session, csrf: CsrfField):
    check_csrf(current, csrf)
    require_operator(current.principal)
    report = billing_run.run(fb_of(request), current.principal)
    return billing_runs_page(request, current, report=report)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, current: Session, tenant: Annotated[str | None, Query(max_length=63)] = None):
    require_operator(current.principal)
    entries = audit.entries(fb_of(request), current.principal, tenant_id=tenant or None, limit=300)
    return page(request, "console_audit.html", current, entries=entries, tenant_filter=tenant or "", tab="audit")
