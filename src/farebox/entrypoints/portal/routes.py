"""Mounting the portal on the app."""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles

from farebox.entrypoints.portal import billing, billing_payments, console, keys, sign_in, tenant
from farebox.entrypoints.portal.web import SignInRequired, page, redirect, signed_in
from farebox.kernel.reasons import DomainError

ROUTERS = (sign_in.router, tenant.router, billing.router, billing_payments.router, console.router, keys.router)


def is_portal(request: Request) -> bool:
    return request.url.path.startswith("/portal")


def install(app: FastAPI) -> None:
    app.mount("/portal/static", StaticFiles(directory=str(resources.files("farebox") / "static")), name="portal-static")
    for router in ROUTERS:
        app.include_router(router)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired):
        return redirect("/portal/sign-in")


def error_page(request: Request, exc: DomainError):
    """A refusal on a portal page: the same code and message as the API, as HTML."""
    from farebox.entrypoints.api.errors import status_for

    try:
        current = signed_in(request)
    except SignInRequired:
        current = None
    return page(request, "error.html", current, status_code=status_for(exc.code), refusal=exc.refusal)
