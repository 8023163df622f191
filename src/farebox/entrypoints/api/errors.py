"""One error shape for every failure: {"error": {"code", "message", "details"}}.

Reason codes (farebox.domain.reasons) are mapped to HTTP statuses here and
nowhere else.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from farebox.adapters.catalog_files import CatalogError
from farebox.domain import reasons
from farebox.domain.reasons import DomainError, Refusal

log = logging.getLogger("farebox.api")

STATUS_BY_CODE: dict[str, int] = {
    "validation_error": 422,
    "not_found": 404,
    "unauthorized": 401,
    "forbidden": 403,
    "idempotency_conflict": 409,
    "conflict": 409,
    "catalog_invalid": 422,
    "plan_not_found": 404,
    "catalog_not_found": 404,
    "tenant_exists": 409,
    "member_exists": 409,
    "clock_backwards": 409,
    "storage_unavailable": 503,
    "trial_already_used": 409,
    "trial_not_offered": 409,
    "same_plan": 409,
    "change_date_in_past": 422,
    "invalid_transition": 409,
    "no_scheduled_change": 404,
    "no_subscription": 404,
    "sales_assisted_plan": 409,
    "not_sales_assisted": 409,
    "payment_method_refused": 402,
    "invoice_not_open": 409,
    "no_credit_balance": 409,
    "credit_refund_too_large": 409,
    "no_charge_to_refund": 409,
    "provider_signature_invalid": 400,
    "session_limit_invalid": 422,
    "session_limit_above_base": 422,
    "session_limit_not_available": 409,
    "event_invalid": 422,
    "event_conflict": 409,
    "event_in_future": 422,
    "event_before_subscription": 422,
    "event_period_invoiced": 409,
}
DEFAULT_STATUS = 409  # a business rule refused the request


def status_for(code: str) -> int:
    return STATUS_BY_CODE.get(code, DEFAULT_STATUS)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}


def refusal_response(refusal: Refusal) -> JSONResponse:
    return JSONResponse(error_body(refusal.code, refusal.message, refusal.details), status_code=status_for(refusal.code))


class RefuseNul:
    """ASGI middleware: a NUL character in the path or query string is a 422, before any handler runs.

    No storage engine keeps NUL in text faithfully (PostgreSQL refuses it), so it is refused at the edge.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and ("\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b"") or b"\x00" in scope.get("query_string", b"")):
            body = error_body("validation_error", "NUL characters are not allowed in the path or query string")
            await JSONResponse(body, status_code=422)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_middleware(RefuseNul)

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        from farebox.entrypoints.portal.routes import error_page, is_portal

        if is_portal(request):
            return error_page(request, exc)
        return refusal_response(exc.refusal)

    @app.exception_handler(CatalogError)
    async def _catalog(_: Request, exc: CatalogError) -> JSONResponse:
        return JSONResponse(error_body("catalog_invalid", str(exc), {"problems": exc.problems}), status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"], "type": e["type"]}
            for e in exc.errors()
        ]
        first = problems[0] if problems else {"field": "", "message": "invalid request"}
        message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        return JSONResponse(error_body("validation_error", message, {"problems": problems}), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(PoolTimeout)
    async def _pool_exhausted(request: Request, exc: PoolTimeout) -> JSONResponse:
        # F2: every pooled connection stayed busy for the pool's timeout; nothing was started.
        log.warning("no database connection free within the pool timeout on %s %s", request.method, request.url.path)
        message = "The database is busy; nothing was changed. Retry the request (with the same Idempotency-Key)."
        return JSONResponse(error_body("storage_unavailable", message), status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(DBAPIError)
    async def _storage(request: Request, exc: DBAPIError) -> JSONResponse:
        # The transaction was rolled back with the connection (the unit of work
        # never commits half); SQLAlchemy refreshes the pool on a lost connection, so a retry gets a new one.
        if exc.connection_invalidated or isinstance(exc, OperationalError):
            unavailable = reasons.STORAGE_UNAVAILABLE
            body = error_body(unavailable.code, unavailable.message())
            return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})
        log.error("storage error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(error_body(reasons.INTERNAL_ERROR.code, reasons.INTERNAL_ERROR.message()), status_code=500)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # the client gets no detail; the operator gets the traceback in the server's log
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(error_body(reasons.INTERNAL_ERROR.code, reasons.INTERNAL_ERROR.message()), status_code=500)
