"""The Billing tab (G6: owners and admins only) and its actions.

Every action is a plain form POST with the CSRF token; dialogs are separate
confirmation pages, so everything works without JavaScript.  A successful
action redirects back to the tab with `?done=…` (post/redirect/get); a
refusal by a rule shows the tab again with the refusal's message.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from farebox.alerts.services import notifications
from farebox.clocks import service as clocks
from farebox.entrypoints.portal import billing_view
from farebox.entrypoints.portal.web import CsrfField, Session, check_csrf, fb_of, page, redirect
from farebox.invoicing.domain.billing_details import MAX_TAX_RATE_BP, bp_to_percent, percent_to_bp
from farebox.invoicing.services import billing_details
from farebox.kernel import reasons
from farebox.kernel.access import require_billing_access
from farebox.kernel.money import Money
from farebox.kernel.reasons import DomainError
from farebox.metering.services import usage
from farebox.records.services import export
from farebox.subscriptions.domain import plan_changes
from farebox.subscriptions.domain.states import Status
from farebox.subscriptions.services import subscriptions
from farebox.tenants.services import tenants

router = APIRouter(prefix="/portal/t/{tenant_id}/billing", include_in_schema=False)

DONE = {
    "subscribed": "Your subscription is updated.",
    "scheduled": "Your plan change is scheduled: see the Upcoming subscription card.",
    "schedule_canceled": "The scheduled plan change is cancelled.",
    "request_received": "Request received",
    "limit_set": "Session limit saved.",
    "limit_reset": "Session limit reset to the plan's base limit.",
    "canceled": "Your subscription is cancelled at the end of the paid period.",
    "reactivated": "Your subscription is active again.",
    "read": "Notifications marked as read.",
    "payment_method": "Payment method added.",
    "details_saved": "Billing details saved: they are printed on the invoices issued from now on.",
}
WHEN = {"immediately": plan_changes.IMMEDIATELY, "end_of_period": plan_changes.END_OF_PERIOD}


def _base(tenant_id: str) -> str:
    return f"/portal/t/{tenant_id}/billing"


def billing_page(
    request: Request, current, tenant_id: str, *, error: reasons.Refusal | None = None, done: str | None = None
) -> HTMLResponse:
    fb = fb_of(request)
    view = billing_view.build(fb, current.principal, tenant_id)
    return page(
        request, "billing.html", current, tenant=view.tenant, v=view, error=error, done=DONE.get(done or ""),
        tab="billing", tax_percent=bp_to_percent,
    )


@router.get("", response_class=HTMLResponse)
def show(request: Request, tenant_id: str, current: Session, done: str | None = None):
    require_billing_access(current.principal, tenant_id)
    return billing_page(request, current, tenant_id, done=done)


def _act(request: Request, tenant_id: str, current, csrf: str, action, done: str) -> Response:
    """CSRF and G6 first (403/404 as errors); then the action; a rule's refusal re-renders the tab."""
    check_csrf(current, csrf)
    require_billing_access(current.principal, tenant_id)
    try:
        action(fb_of(request), current.principal)
    except DomainError as exc:
        return billing_page(request, current, tenant_id, error=exc.refusal)
    return redirect(f"{_base(tenant_id)}?done={done}")


# --- billing details (G13): e-mail, legal name, address, tax id and rate ---------------------------


@router.post("/details")
def set_details(
    request: Request, tenant_id: str, current: Session, csrf: CsrfField,
    billing_email: Annotated[str, Form()] = "", legal_name: Annotated[str, Form()] = "",
    billing_address: Annotated[str, Form()] = "", tax_id: Annotated[str, Form()] = "",
    tax_rate: Annotated[str, Form()] = "",
):
    def run(fb, actor):
        rate = percent_to_bp(tax_rate or "0")
        if rate is None or rate > MAX_TAX_RATE_BP:
            detail = "tax rate: a percentage from 0 to 100, such as 20 or 7.25"
            raise DomainError(reasons.VALIDATION_ERROR, detail=detail, details={"field": "tax_rate"})
        changes = {
            "billing_email": billing_email, "legal_name": legal_name, "billing_address": billing_address,
            "tax_id": tax_id, "tax_rate_bp": rate,
        }
        billing_details.update_billing_details(fb, actor, tenant_id, changes)

    return _act(request, tenant_id, current, csrf, run, "details_saved")


# --- plans: subscribe, the *Apply subscription updates* dialog (G7), sales requests (S1, A5) ---------


@router.get("/plans/{plan}", response_class=HTMLResponse)
def plan_dialog(request: Request, tenant_id: str, plan: str, current: Session):
    fb = fb_of(request)
    require_billing_access(current.principal, tenant_id)
    sub = subscriptions.current(fb, current.principal, tenant_id)
    catalog_name = sub.catalog if sub is not None else billing_view.default_catalog(fb)
    offer = next((p for p in billing_view.plan_offers(fb, catalog_name, None) if p.code == plan), None)
    if offer is None:
        raise DomainError(reasons.PLAN_NOT_FOUND, plan=plan, catalog=catalog_name or "")
    paid = sub is not None and sub.status in (Status.ACTIVE, Status.PAYMENT_ISSUE) and not sub.plan.is_free
    preview = (
        subscriptions.preview_change(fb, current.principal, tenant_id, catalog=sub.catalog, plan=plan)
        if sub is not None
        else None
    )
    today = clocks.tenant_now(fb, current.principal, tenant_id).date()
    due_now = (
        Money(preview.due_now_minor, preview.currency).format()
        if preview is not None and preview.due_now_minor is not None
        else None
    )
    return page(
        request,
        "plan_dialog.html",
        current,
        tenant=tenants.get_tenant(fb, current.principal, tenant_id),
        offer=offer,
        paid=paid,
        preview=preview,
        due_now=due_now,
        current_sub=sub,
        min_date=today.isoformat(),
        tab="billing",
    )


def _when(when: str, on: str) -> str | datetime:
    if when in WHEN:
        return WHEN[when]
    if when == "custom_date":
        try:
            day = date.fromisoformat(on.strip())
        except ValueError:
            raise DomainError(
                reasons.VALIDATION_ERROR, detail="pick the date the change applies on", details={"field": "date"}
            ) from None
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    raise DomainError(reasons.VALIDATION_ERROR, detail="choose when the change applies", details={"field": "when"})


@router.post("/subscribe")
def subscribe(
    request: Request, tenant_id: str, current: Session, csrf: CsrfField,
    plan: Annotated[str, Form(max_length=63)], when: Annotated[str, Form(max_length=20)] = "immediately",
    on: Annotated[str, Form(alias="date", max_length=10)] = "",
):
    """Subscribe, or change the plan now, at the end of the period or on a date (G7)."""
    outcome = {}

    def run(fb, actor):
        sub = subscriptions.current(fb, actor, tenant_id)
        catalog_name = sub.catalog if sub is not None else billing_view.default_catalog(fb)
        outcome["change"] = subscriptions.change_plan(
            fb, actor, tenant_id, plan=plan, catalog=catalog_name, when=_when(when, on), cause="portal"
        )

    response = _act(request, tenant_id, current, csrf, run, "subscribed")
    if "change" in outcome and not outcome["change"].immediate:
        return redirect(f"{_base(tenant_id)}?done=scheduled")
    return response


@router.post("/sales-requests")
def sales_request(
    request: Request, tenant_id: str, current: Session, csrf: CsrfField, plan: Annotated[str, Form(max_length=63)]
):
    def run(fb, actor):
        sub = subscriptions.current(fb, actor, tenant_id)
        catalog_name = sub.catalog if sub is not None else billing_view.default_catalog(fb)
        subscriptions.request_sales_contact(fb, actor, tenant_id, plan=plan, catalog=catalog_name)

    return _act(request, tenant_id, current, csrf, run, "request_received")


# --- the Upcoming card: *Cancel scheduled plan* (G7, A5) ------------------------------------------


@router.get("/upcoming/cancel", response_class=HTMLResponse)
def cancel_upcoming_dialog(request: Request, tenant_id: str, current: Session):
    fb = fb_of(request)
    require_billing_access(current.principal, tenant_id)
    found = subscriptions.cards(fb, current.principal, tenant_id)
    return page(
        request,
        "confirm.html",
        current,
        tenant=tenants.get_tenant(fb, current.principal, tenant_id),
        tab="billing",
        title="Cancel scheduled plan",
        upcoming=found.upcoming,
        action=f"{_base(tenant_id)}/upcoming/cancel",
        question=(
            f"Cancel the change to {found.upcoming.plan_name}, which starts on {found.upcoming.starts_on:%d %b %Y}?"
            if found.upcoming
            else "There is no scheduled plan change."
        ),
        confirm="Cancel scheduled plan",
        back=_base(tenant_id),
        enabled=found.upcoming is not None,
    )


@router.post("/upcoming/cancel")
def cancel_upcoming(request: Request, tenant_id: str, current: Session, csrf: CsrfField):
    return _act(
        request,
        tenant_id,
        current,
        csrf,
        lambda fb, actor: subscriptions.cancel_scheduled_change(fb, actor, tenant_id, cause="portal"),
        "schedule_canceled",
    )


# --- cancel and reactivate (G8) -------------------------------------------------------------------


@router.get("/cancel", response_class=HTMLResponse)
def cancel_dialog(request: Request, tenant_id: str, current: Session):
    fb = fb_of(request)
    require_billing_access(current.principal, tenant_id)
    found = subscriptions.cards(fb, current.principal, tenant_id)
    card = found.subscription
    ends = card.next_billing_at or card.trial_ends_at if card else None
    question = "Cancel your subscription? Everything keeps working until the end of the paid period" + (
        f" ({ends:%d %b %Y})." if ends else "."
    )
    return page(
        request,
        "confirm.html",
        current,
        tenant=tenants.get_tenant(fb, current.principal, tenant_id),
        tab="billing",
        title="Cancel subscription",
        action=f"{_base(tenant_id)}/cancel",
        question=question,
        confirm="Cancel subscription",
        back=_base(tenant_id),
        enabled=card is not None,
    )


@router.post("/cancel")
def cancel(request: Request, tenant_id: str, current: Session, csrf: CsrfField):
    return _act(
        request,
        tenant_id,
        current,
        csrf,
        lambda fb, actor: subscriptions.cancel(fb, actor, tenant_id, cause="portal"),
        "canceled",
    )


@router.post("/reactivate")
def reactivate(request: Request, tenant_id: str, current: Session, csrf: CsrfField):
    return _act(
        request,
        tenant_id,
        current,
        csrf,
        lambda fb, actor: subscriptions.reactivate(fb, actor, tenant_id, cause="portal"),
        "reactivated",
    )


# --- the *Session limit* card (A6) --------------------------------------------------------------------


MAX_SESSION_LIMIT = 1_000_000_000  # as the API's SessionLimitIn


def _whole_number(text: str) -> int:
    """The form's text as a session limit; anything else (letters, a fraction, 20 digits) is the form's
    friendly refusal, never a raw validation error."""
    text = text.strip()
    if not text.isdigit() or len(text) > len(str(MAX_SESSION_LIMIT)) or int(text) > MAX_SESSION_LIMIT:
        raise DomainError(reasons.SESSION_LIMIT_INVALID)
    return int(text)


@router.post("/session-limit")
def set_limit(
    request: Request, tenant_id: str, current: Session, csrf: CsrfField, sessions: Annotated[str, Form(max_length=200)]
):
    return _act(
        request,
        tenant_id,
        current,
        csrf,
        lambda fb, actor: usage.set_session_limit(fb, actor, tenant_id, _whole_number(sessions)),
        "limit_set",
    )


@router.post("/session-limit/reset")
def reset_limit(request: Request, tenant_id: str, current: Session, csrf: CsrfField):
    return _act(
        request,
        tenant_id,
        current,
        csrf,
        lambda fb, actor: usage.reset_session_limit(fb, actor, tenant_id),
        "limit_reset",
    )


# --- notifications and the data export ---------------------------------------------------------------


@router.post("/notifications/read")
def read_all(request: Request, tenant_id: str, current: Session, csrf: CsrfField):
    return _act(
        request, tenant_id, current, csrf, lambda fb, actor: notifications.mark_all_read(fb, actor, tenant_id), "read"
    )


@router.get("/export")
def download_export(request: Request, tenant_id: str, current: Session):
    """The tenant's records as a zip (the seeds advise exporting before cancelling; G14)."""
    require_billing_access(current.principal, tenant_id)
    data = export.export_zip(fb_of(request), current.principal, tenant_id)
    stamp = clocks.tenant_now(fb_of(request), current.principal, tenant_id).strftime("%Y%m%d")
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{tenant_id}-export-{stamp}.zip"'},
    )
