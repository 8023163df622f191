"""Edge middleware: bounded request bodies and hardening headers.

Both are plain ASGI middleware, installed by `install(app)`; neither knows any route.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

MiB = 1024 * 1024
# the largest legitimate body is a 10,000-event ingestion batch (about 10 MB), or a catalog
# document (1,000,000 characters, up to 6 bytes each once JSON-escaped)
LARGE_BODY_BYTES = 16 * MiB
JSON_BODY_BYTES = 1 * MiB  # every other API route
FORM_BODY_BYTES = 64 * 1024  # portal forms
LARGE_BODY_PATHS = re.compile(r"^/v1/(tenants/[^/]+/usage/events|catalogs)/?$")


def body_limit_for(path: str) -> int:
    if path.startswith("/portal"):
        return FORM_BODY_BYTES
    if LARGE_BODY_PATHS.match(path):
        return LARGE_BODY_BYTES
    return JSON_BODY_BYTES


def _too_large(limit: int) -> dict[str, Any]:
    message = f"The request body is larger than {limit} bytes."
    return {"error": {"code": "body_too_large", "message": message, "details": {"limit_bytes": limit}}}


class BodyTooLarge(HTTPException):
    """Raised while reading a body without a Content-Length that goes past the limit (FastAPI re-raises it as is)."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"The request body is larger than {limit} bytes.")
        self.limit = limit


class LimitBodies:
    """A body larger than its route's limit is refused with 413 before anything else runs.

    A declared `Content-Length` above the limit is answered at once, without reading a byte
    (so before authentication); a streamed body is counted as it arrives and refused when it
    goes past the limit, so at most `limit` bytes are ever held."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit_for(scope.get("path", ""))
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await JSONResponse(_too_large(limit), status_code=413, headers={"Connection": "close"})(
                scope, receive, send
            )
            return
        received = 0

        async def counted() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


API_CSP = "default-src 'none'; frame-ancestors 'none'"
PORTAL_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000"
DOC_PATHS = ("/docs", "/redoc")  # Swagger UI and ReDoc bring their own scripts and styles


class HardeningHeaders:
    """Nosniff, no framing, a referrer policy and a Content-Security-Policy on every answer; HSTS over https.

    A header a route set itself (e.g. `Referrer-Policy: no-referrer` on a sign-in link's page) is kept."""

    def __init__(self, app: Any, *, public_url: str | None = None) -> None:
        self.app = app
        self.public_https = bool(public_url and public_url.startswith("https://"))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        https = scope.get("scheme") == "https" or self.public_https

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "same-origin")
                if not path.startswith(DOC_PATHS):
                    headers.setdefault("Content-Security-Policy", PORTAL_CSP if path.startswith("/portal") else API_CSP)
                if https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, with_headers)


def install(app: Any, *, public_url: str | None) -> None:
    """Bodies are bounded first; the headers go on every answer, the 413s included."""
    app.add_middleware(LimitBodies)
    app.add_middleware(HardeningHeaders, public_url=public_url)
