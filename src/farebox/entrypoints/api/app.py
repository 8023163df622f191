"""The FastAPI application: routers per area, one error shape, OpenAPI at /docs."""

from __future__ import annotations

from fastapi import FastAPI

import farebox
from farebox.bootstrap import Farebox, bootstrap
from farebox.entrypoints import metrics
from farebox.entrypoints.api import docs_pages, errors
from farebox.entrypoints.api.routers import (
    admission, audit, catalogs, clocks, credits, export, health, invoices, notifications, subscriptions, tenants, usage,
)
from farebox.entrypoints.api.schemas import ErrorOut
from farebox.entrypoints.portal import routes as portal

ROUTERS = (
    health.router,
    catalogs.router,
    tenants.router,
    subscriptions.router,
    clocks.router,
    audit.router,
    export.router,
    notifications.router,
    invoices.router,
    invoices.webhooks,
    credits.router,
    admission.router,
    usage.router,
)


def create_app(fb: Farebox | None = None) -> FastAPI:
    app = FastAPI(
        title="farebox",
        docs_url=None,  # docs_pages serves /docs and /redoc with their assets from the package
        redoc_url=None,
        version=farebox.__version__,
        description="Billing, metering and admission control for attendance- and session-priced products.",
        responses={
            401: {"model": ErrorOut, "description": "Missing or wrong API key"},
            403: {"model": ErrorOut, "description": "The caller's role does not allow this"},
            404: {"model": ErrorOut, "description": "Not found (or another tenant's)"},
            409: {"model": ErrorOut, "description": "Refused by a rule, or an idempotency conflict"},
            422: {"model": ErrorOut, "description": "Invalid request; the field is named"},
        },
    )
    app.state.fb = fb or bootstrap()
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    portal.install(app)
    docs_pages.install(app)
    metrics.install(app)
    return app
