"""One error shape for every failure: {"error": {"code", "message", "details"}}.

Reason codes (farebox.kernel.reasons) are mapped to HTTP statuses here and
nowhere else.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from farebox.catalog.files import CatalogError
from farebox.kernel import reasons
from farebox.kernel.reasons import DomainError, Refusal

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
    "payment_method_required": 402,
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
    "api_key_inactive": 409,
    "sign_in_rate_limited": 429,
    "body_too_large": 413,
    "invalid_json": 422,
    "email_not_sent": 502,
    "event_in_future": 422,
    "event_before_subscription": 422,
    "event_period_invoiced": 409,
}
DEFAULT_STATUS = 409  # a business rule refused the request
HTTP_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
BODY_PARSE_ERROR = "There was an error parsing the body"  # FastAPI's 400 for a body it cannot decode


def status_for(code: str) -> int:
    return STATUS_BY_CODE.get(code, DEFAULT_STATUS)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}


def problem(field: str, message: str, kind: str) -> dict[str, str]:
    return {"field": field, "message": message, "type": kind}


def refusal_details(refusal: Refusal) -> dict[str, Any]:
    """One shape per code: a refusal about a field names it in `problems`, as a request's validation does."""
    details = dict(refusal.details)
    if "field" in details and "problems" not in details:
        details["problems"] = [problem(str(details.pop("field")), refusal.message, refusal.code)]
    elif refusal.code == "validation_error" and "problems" not in details:
        details["problems"] = [problem("", refusal.message, refusal.code)]
    return details


def refusal_response(refusal: Refusal) -> JSONResponse:
    return JSONResponse(
        error_body(refusal.code, refusal.message, refusal_details(refusal)), status_code=status_for(refusal.code)
    )


# parts of a pydantic error location that name a union member's type, not a field
_TYPE_PARTS = frozenset({"str", "int", "float", "bool", "datetime", "date", "time", "decimal", "none", "list", "dict"})
_VALUE_ERROR = re.compile(r"^Value error, (?:([\w.]+): )?(.*)$", re.S)
_ROOT_MESSAGES = {
    "missing": "A JSON body is required.",
    "model_attributes_type": "The body must be a JSON object.",
    "dict_type": "The body must be a JSON object.",
}


def validation_problems(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Each invalid field once, named by its path in the body, query or path (never a union member's type)."""
    problems: list[dict[str, str]] = []
    seen: set[str] = set()
    for e in errors:
        parts = [
            str(p) for p in e["loc"] if p != "body" and not (isinstance(p, str) and ("[" in p or p in _TYPE_PARTS))
        ]
        field, message = ".".join(parts), str(e["msg"])
        value_error = _VALUE_ERROR.match(message) if e["type"] == "value_error" else None
        if value_error:  # our validators name the field in the message ("person_id: text must not contain NUL")
            field = ".".join(p for p in (field, value_error.group(1) or "") if p)
            message = value_error.group(2)
        elif not field and e["type"] in _ROOT_MESSAGES:
            message = _ROOT_MESSAGES[e["type"]]
        if field in seen:  # another member of a union: one problem per field, saying each way it could be valid
            same = next(p for p in problems if p["field"] == field)
            same["message"] = f"{same['message']}; or: {message}"
            continue
        seen.add(field)
        problems.append(problem(field, message, str(e["type"])))
    return problems


def invalid_json(position: int | None, reason: str = "") -> JSONResponse:
    """A body that is not JSON at all is `invalid_json`, not a field error."""
    where = f" (at character {position}{': ' + reason if reason else ''})" if position is not None else ""
    message = f"The body is not valid JSON{where}."
    return JSONResponse(
        error_body("invalid_json", message, {"problems": [problem("", message, "json_invalid")]}), status_code=422
    )


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on this path (a 405 names them all in `Allow`)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        candidates = route.effective_route_contexts() if hasattr(route, "effective_route_contexts") else [route]
        for candidate in candidates:
            matches = getattr(candidate, "matches", None)
            if matches is None or not getattr(candidate, "methods", None):
                continue
            match, _ = matches({**request.scope, "method": "\x00"})
            if match is not Match.NONE:
                methods |= set(candidate.methods)
    return sorted(methods)


class RefuseNul:
    """ASGI middleware: a NUL character in the path or query string is a 422, before any handler runs.

    No storage engine keeps NUL in text faithfully (PostgreSQL refuses it), so it is refused at the edge.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope.get("path", "")
            or b"%00" in scope.get("query_string", b"")
            or b"\x00" in scope.get("query_string", b"")
        ):
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
        errors = list(exc.errors())
        broken = next((e for e in errors if e["type"] == "json_invalid"), None)
        if broken is not None:
            position = broken["loc"][-1] if isinstance(broken["loc"][-1], int) else None
            return invalid_json(position, str((broken.get("ctx") or {}).get("error", "")))
        problems = validation_problems(errors)
        first = problems[0] if problems else problem("", "invalid request", "validation_error")
        message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        return JSONResponse(error_body("validation_error", message, {"problems": problems}), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == BODY_PARSE_ERROR:  # bytes that are not even text: invalid_json
            return invalid_json(None)
        code = HTTP_CODES.get(exc.status_code, "http_error")
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=headers or None)

    @app.exception_handler(PoolTimeout)
    async def _pool_exhausted(request: Request, exc: PoolTimeout) -> JSONResponse:
        # every pooled connection stayed busy for the pool's timeout; nothing was started.
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
