"""One error shape for every failure: {"error": {"code", "message", "details"}}.

Reason codes (farebox.domain.reasons) are mapped to HTTP statuses here and
nowhere else.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from farebox.adapters.catalog_files import CatalogError
from farebox.domain.reasons import DomainError, Refusal

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
}
DEFAULT_STATUS = 409  # a business rule refused the request


def status_for(code: str) -> int:
    return STATUS_BY_CODE.get(code, DEFAULT_STATUS)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}


def refusal_response(refusal: Refusal) -> JSONResponse:
    return JSONResponse(error_body(refusal.code, refusal.message, refusal.details), status_code=status_for(refusal.code))


def install(app: FastAPI) -> None:
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

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(error_body("internal_error", "An unexpected error occurred; nothing was changed."), status_code=500)
