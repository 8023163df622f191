"""Sign-in pages: magic links for members, API key for the operator."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse

from farebox.entrypoints.portal.web import (
    PRE_CSRF_COOKIE,
    SESSION_COOKIE,
    CsrfField,
    Session,
    check_csrf,
    fb_of,
    page,
    public_base,
    redirect,
    secure_cookies,
)
from farebox.kernel.reasons import DomainError
from farebox.tenants.services import sign_in as portal_auth

router = APIRouter(prefix="/portal", include_in_schema=False)


def _sign_in_form(request: Request, template: str, **context) -> HTMLResponse:
    token = request.cookies.get(PRE_CSRF_COOKIE) or secrets.token_urlsafe(24)
    request.cookies[PRE_CSRF_COOKIE] = token
    response = page(request, template, None, **context)
    response.set_cookie(PRE_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies(request))
    return response


def _check_pre_csrf(request: Request, token: str) -> bool:
    cookie = request.cookies.get(PRE_CSRF_COOKIE, "")
    return bool(cookie) and secrets.compare_digest(cookie, token)


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request):
    return _sign_in_form(request, "sign_in.html")


@router.post("/sign-in", response_class=HTMLResponse)
def request_link(
    request: Request, tasks: BackgroundTasks, csrf: CsrfField,
    tenant_id: Annotated[str, Form(max_length=63)], email: Annotated[str, Form(max_length=254)],
):
    if not _check_pre_csrf(request, csrf):
        return _sign_in_form(request, "sign_in.html", error="Your form expired; please try again.")
    fb = fb_of(request)
    client = request.client.host if request.client else ""
    try:
        link = portal_auth.request_link(
            fb, tenant_id=tenant_id.strip(), email=email, base_url=public_base(request), client=client
        )
    except DomainError as exc:
        response = _sign_in_form(request, "sign_in.html", error=exc.refusal.message)
        response.status_code = 429
        return response
    if link is not None:  # sent after the answer, so members and non-members are answered alike
        tasks.add_task(portal_auth.send_link, fb, link)
    return page(request, "link_sent.html", None, email=email)


@router.get("/sign-in/{token}", response_class=HTMLResponse)
def confirm(request: Request, token: str):
    """Opening the link uses nothing up; the button on this page does (mail scanners only GET)."""
    response = _sign_in_form(request, "confirm_sign_in.html", token=token)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@router.post("/sign-in/{token}")
def redeem(request: Request, token: str, csrf: CsrfField):
    opened = portal_auth.redeem_link(fb_of(request), token) if _check_pre_csrf(request, csrf) else None
    if opened is None:
        return _sign_in_form(
            request, "sign_in.html", error="This sign-in link is not valid any more. Ask for a new one."
        )
    response = redirect(f"/portal/t/{opened.principal.tenant_id}")
    response.set_cookie(
        SESSION_COOKIE, opened.token, httponly=True, samesite="lax", secure=secure_cookies(request), max_age=12 * 3600
    )
    return response


@router.get("/operator", response_class=HTMLResponse)
def operator_page(request: Request):
    return _sign_in_form(request, "operator_sign_in.html")


@router.post("/operator")
def operator_sign_in(request: Request, csrf: CsrfField, api_key: Annotated[str, Form(max_length=200)]):
    opened = portal_auth.operator_sign_in(fb_of(request), api_key.strip()) if _check_pre_csrf(request, csrf) else None
    if opened is None:
        return _sign_in_form(request, "operator_sign_in.html", error="That is not an operator API key.")
    response = redirect("/portal/console")
    response.set_cookie(
        SESSION_COOKIE, opened.token, httponly=True, samesite="lax", secure=secure_cookies(request), max_age=12 * 3600
    )
    return response


@router.post("/sign-out")
def sign_out(request: Request, current: Session, csrf: CsrfField):
    check_csrf(current, csrf)
    portal_auth.sign_out(fb_of(request), current.token)
    response = redirect("/portal/sign-in")
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("")
def home(current: Session):
    if current.principal.is_operator:
        return redirect("/portal/console")
    return redirect(f"/portal/t/{current.principal.tenant_id}")
