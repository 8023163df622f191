"""API keys in the portal: owners and admins manage their tenant's keys, the operator the operator keys.

A new key's secret is shown once, on the page that answers the form that made it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from farebox.entrypoints.portal.web import CsrfField, Session, check_csrf, fb_of, page
from farebox.kernel.access import Role
from farebox.kernel.reasons import DomainError
from farebox.tenants.services import tenants
from farebox.tenants.services.sign_in import PortalSession

router = APIRouter(include_in_schema=False)
TENANT_KEYS = "/portal/t/{tenant_id}/keys"
OPERATOR_KEYS = "/portal/console/keys"
Days = Annotated[int | None, Form(ge=1, le=3650)]


def _keys_page(
    request: Request,
    current: PortalSession,
    tenant_id: str | None,
    *,
    issued: tenants.IssuedKey | None = None,
    error: str | None = None,
    done: str | None = None,
) -> HTMLResponse:
    """The list, with the outcome of the form that led here (a refusal is shown on the page, as on the Billing tab)."""
    keys = tenants.list_api_keys(fb_of(request), current.principal, tenant_id=tenant_id)
    base = TENANT_KEYS.format(tenant_id=tenant_id) if tenant_id else OPERATOR_KEYS
    return page(
        request,
        "api_keys.html",
        current,
        keys=keys,
        tenant_id=tenant_id,
        base=base,
        issued=issued,
        error=error,
        done=done,
        roles=("member", "admin", "owner"),
        tab="keys",
    )


def _new_key(
    request: Request, current: PortalSession, tenant_id: str | None, make: Callable[[], tenants.IssuedKey]
) -> HTMLResponse:
    """Issue or rotate; the new secret is shown once. Refusals other than who-may-do-what are shown on the page."""
    try:
        issued = make()
    except DomainError as exc:
        if exc.code in ("forbidden", "not_found"):
            raise
        return _keys_page(request, current, tenant_id, error=exc.refusal.message)
    return _keys_page(request, current, tenant_id, issued=issued)


def _issue(
    request: Request, current: PortalSession, tenant_id: str | None, role: Role, name: str, days: int | None
) -> HTMLResponse:
    fb = fb_of(request)
    expires_at = fb.clock.now() + timedelta(days=days) if days else None
    return _new_key(request, current, tenant_id, lambda: tenants.issue_api_key(
        fb, current.principal, tenant_id=tenant_id, role=role, name=name, expires_at=expires_at))


def _rotate(request: Request, current: PortalSession, tenant_id: str | None, key_id: str, hours: int) -> HTMLResponse:
    return _new_key(request, current, tenant_id, lambda: tenants.rotate_api_key(
        fb_of(request), current.principal, key_id, tenant_id=tenant_id, grace=timedelta(hours=hours)))


@router.get(TENANT_KEYS, response_class=HTMLResponse)
def tenant_keys(request: Request, tenant_id: str, current: Session):
    return _keys_page(request, current, tenant_id)


@router.post(TENANT_KEYS, response_class=HTMLResponse)
def issue_tenant_key(
    request: Request,
    tenant_id: str,
    current: Session,
    csrf: CsrfField,
    role: Annotated[Role, Form()],
    name: Annotated[str, Form(max_length=200)] = "",
    expires_in_days: Days = None,
):
    check_csrf(current, csrf)
    return _issue(request, current, tenant_id, role, name, expires_in_days)


@router.post(TENANT_KEYS + "/{key_id}/revoke", response_class=HTMLResponse)
def revoke_tenant_key(request: Request, tenant_id: str, key_id: str, current: Session, csrf: CsrfField):
    check_csrf(current, csrf)
    tenants.revoke_api_key(fb_of(request), current.principal, key_id, tenant_id=tenant_id)
    return _keys_page(request, current, tenant_id, done=f"Key {key_id} is revoked.")


@router.post(TENANT_KEYS + "/{key_id}/rotate", response_class=HTMLResponse)
def rotate_tenant_key(request: Request, tenant_id: str, key_id: str, current: Session, csrf: CsrfField,
                      grace_hours: Annotated[int, Form(ge=0, le=168)] = 0):
    check_csrf(current, csrf)
    return _rotate(request, current, tenant_id, key_id, grace_hours)


@router.get(OPERATOR_KEYS, response_class=HTMLResponse)
def operator_keys(request: Request, current: Session):
    return _keys_page(request, current, None)


@router.post(OPERATOR_KEYS, response_class=HTMLResponse)
def issue_operator_key(request: Request, current: Session, csrf: CsrfField,
                       name: Annotated[str, Form(max_length=200)] = "", expires_in_days: Days = None):
    check_csrf(current, csrf)
    return _issue(request, current, None, Role.OPERATOR, name, expires_in_days)


@router.post(OPERATOR_KEYS + "/{key_id}/revoke", response_class=HTMLResponse)
def revoke_operator_key(request: Request, key_id: str, current: Session, csrf: CsrfField):
    check_csrf(current, csrf)
    tenants.revoke_api_key(fb_of(request), current.principal, key_id, tenant_id=None)
    return _keys_page(request, current, None, done=f"Key {key_id} is revoked.")


@router.post(OPERATOR_KEYS + "/{key_id}/rotate", response_class=HTMLResponse)
def rotate_operator_key(request: Request, key_id: str, current: Session, csrf: CsrfField,
                        grace_hours: Annotated[int, Form(ge=0, le=168)] = 0):
    check_csrf(current, csrf)
    return _rotate(request, current, None, key_id, grace_hours)
