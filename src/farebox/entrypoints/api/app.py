"""The FastAPI application: routers per area, one error shape, OpenAPI at /docs."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

import farebox
from farebox.bootstrap import Farebox, bootstrap
from farebox.entrypoints import metrics
from farebox.entrypoints.api import docs_pages, errors, middleware
from farebox.entrypoints.api.routers import (
    admission,
    api_keys,
    audit,
    billing_details,
    catalogs,
    clocks,
    credits,
    entitlements,
    export,
    health,
    invoices,
    notifications,
    subscriptions,
    tenants,
    usage,
)
from farebox.entrypoints.api.schemas import ErrorOut, state_no_nul
from farebox.entrypoints.portal import routes as portal

ROUTERS = (
    health.router,
    catalogs.router,
    tenants.router,
    api_keys.router,
    billing_details.router,
    subscriptions.router,
    clocks.router,
    audit.router,
    export.router,
    notifications.router,
    invoices.router,
    invoices.webhooks,
    credits.router,
    admission.router,
    entitlements.router,
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
    middleware.install(app, public_url=app.state.fb.settings.public_url)  # body limits, hardening headers
    for router in ROUTERS:
        app.include_router(router)
    portal.install(app)
    docs_pages.install(app)
    metrics.install(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated schema, stating the edge's rules too: no NUL in any request text, key, path or query
    value."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.get("components", {}).get("schemas", {})
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                state_no_nul(operation.get("parameters", []))
                for content in operation.get("requestBody", {}).get("content", {}).values():
                    for name in _referenced(content.get("schema", {}), components):
                        state_no_nul(components[name])
        app.openapi_schema = schema
    return app.openapi_schema


def _referenced(node: Any, components: dict[str, Any], found: set[str] | None = None) -> set[str]:
    """The component schemas a request body uses, nested ones included."""
    found = set() if found is None else found
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        name = ref.rsplit("/", 1)[-1]
        if ref and name not in found and name in components:
            found.add(name)
            _referenced(components[name], components, found)
        for value in node.values():
            _referenced(value, components, found)
    elif isinstance(node, list):
        for value in node:
            _referenced(value, components, found)
    return found
