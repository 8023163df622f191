"""Shared plumbing for portal pages: templates, the signed-in session, CSRF."""

from __future__ import annotations

import secrets
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from farebox.bootstrap import Farebox
from farebox.kernel import reasons
from farebox.kernel.access import BILLING_ROLES
from farebox.kernel.reasons import DomainError
from farebox.tenants.services import sign_in as portal_auth
from farebox.tenants.services.sign_in import PortalSession

SESSION_COOKIE = "farebox_session"
PRE_CSRF_COOKIE = "farebox_csrf"

templates = Jinja2Templates(directory=str(resources.files("farebox") / "templates" / "portal"))


class SignInRequired(Exception):
    """Raised by `signed_in`; the app turns it into a redirect to the sign-in page."""


def fb_of(request: Request) -> Farebox:
    return request.app.state.fb


def public_base(request: Request) -> str:
    """The base of every link farebox hands out: FAREBOX_PUBLIC_URL, else the address the server listens on.

    Never the Host header (or X-Forwarded-Host) a client sends, so nobody can have a link point elsewhere."""
    configured = fb_of(request).settings.public_url
    if configured:
        return configured.rstrip("/")
    host, port = request.scope.get("server") or ("127.0.0.1", 80)
    host = f"[{host}]" if ":" in str(host) else host
    scheme = request.url.scheme
    default_port = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" + ("" if port == default_port else f":{port}")


def secure_cookies(request: Request) -> bool:
    """Secure cookies when FAREBOX_PUBLIC_URL is https; without it, on HTTPS, and on loopback where browsers accept
    them over HTTP."""
    configured = fb_of(request).settings.public_url
    if configured:
        return configured.startswith("https://")
    return request.url.scheme == "https" or request.url.hostname in ("localhost", "127.0.0.1", "::1")


def signed_in(request: Request) -> PortalSession:
    current = portal_auth.session(fb_of(request), request.cookies.get(SESSION_COOKIE))
    if current is None:
        raise SignInRequired()
    return current


Session = Annotated[PortalSession, Depends(signed_in)]


def check_csrf(current: PortalSession, token: str) -> None:
    if not token or not secrets.compare_digest(token, current.csrf_token):
        raise DomainError(reasons.FORBIDDEN, details={"field": "csrf_token"})


CsrfField = Annotated[str, Form(alias="csrf_token")]


def page(
    request: Request, template: str, current: PortalSession | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    principal = current.principal if current else None
    return templates.TemplateResponse(
        request,
        template,
        {
            "session": current,
            "principal": principal,
            "csrf_token": current.csrf_token if current else request.cookies.get(PRE_CSRF_COOKIE, ""),
            "shows_billing": bool(principal and principal.role in BILLING_ROLES),
            **context,
        },
        status_code=status_code,
    )


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)
