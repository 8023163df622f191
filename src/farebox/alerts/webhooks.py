"""Signed webhooks (Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`).

Signing uses the `standardwebhooks` package (the scheme's reference library):
HMAC-SHA256 over `{id}.{timestamp}.{body}` with the endpoint's secret
(`whsec_` + base64).  While a rotated secret is in its grace window, the
message is signed with both secrets, space-separated, as the scheme allows,
so receivers still holding the old secret keep verifying.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import httpx
from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def signature(secrets_in_force: Iterable[str], *, msg_id: str, timestamp: datetime, body: str) -> str:
    """The `webhook-signature` header: one `v1,<base64>` per secret, space-separated."""
    return " ".join(Webhook(secret).sign(msg_id, timestamp, body) for secret in secrets_in_force)


def headers(secrets_in_force: Iterable[str], *, msg_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature(secrets_in_force, msg_id=msg_id, timestamp=timestamp, body=body),
        "user-agent": "farebox-webhooks",
    }


@dataclass(frozen=True, slots=True)
class PostResult:
    ok: bool
    status_code: int | None
    error: str | None


def post(
    url: str, *, body: str, headers: dict[str, str], timeout: float = 10.0, transport: httpx.BaseTransport | None = None
) -> PostResult:
    """POST once; a 2xx is delivered, anything else (or no answer) is a failure to retry."""
    try:
        with httpx.Client(timeout=timeout, transport=transport, follow_redirects=False) as client:
            response = client.post(url, content=body.encode(), headers=headers)
    except httpx.HTTPError as exc:
        return PostResult(False, None, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= response.status_code < 300:
        return PostResult(True, response.status_code, None)
    return PostResult(False, response.status_code, f"HTTP {response.status_code}: {response.text[:200]}")
