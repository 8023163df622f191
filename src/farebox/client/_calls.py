"""What each operation sends and how its answer is read, shared by `Client` and `AsyncClient`,
and the retry rule (503 with Retry-After, lost connections)."""

from __future__ import annotations

import email.utils
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx

from farebox.client._models import Decision, FareboxError, IngestResult, IssuedKey, Usage

T = TypeVar("T")
Mode = Literal["early", "live", "replay", "on_demand"]
Role = Literal["attendee", "member", "cohost"]
Sender = Literal["customer", "agent"]
RETRY_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    method: str
    path: str
    body: Any
    read: Callable[[httpx.Response], T]

    @property
    def writes(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH", "DELETE")


def _seg(value: str) -> str:
    return quote(value, safe="")


def _json(response: httpx.Response) -> Any:
    return response.json()


def _decision(response: httpx.Response) -> Decision:
    return Decision.of(response.json(), replayed=response.headers.get("idempotent-replayed") == "true")


def _tenant(tenant_id: str) -> str:
    return f"/v1/tenants/{_seg(tenant_id)}"


def _occurrence(tenant_id: str, occurrence_id: str, action: str, body: Any = None) -> Call[Decision]:
    return Call("POST", f"{_tenant(tenant_id)}/occurrences/{_seg(occurrence_id)}/{action}", body, _decision)


def start(tenant_id: str, occurrence_id: str) -> Call[Decision]:
    return _occurrence(tenant_id, occurrence_id, "start")


def join(tenant_id: str, occurrence_id: str, person_id: str, *, mode: Mode, role: Role) -> Call[Decision]:
    return _occurrence(tenant_id, occurrence_id, "join", {"person_id": person_id, "mode": mode, "role": role})


def leave(tenant_id: str, occurrence_id: str, person_id: str) -> Call[Decision]:
    return _occurrence(tenant_id, occurrence_id, "leave", {"person_id": person_id})


def register(tenant_id: str, occurrence_id: str, person_id: str) -> Call[Decision]:
    return _occurrence(tenant_id, occurrence_id, "register", {"person_id": person_id})


def end(tenant_id: str, occurrence_id: str) -> Call[Decision]:
    return _occurrence(tenant_id, occurrence_id, "end")


def message(tenant_id: str, conversation_id: str, *, sender: Sender) -> Call[Decision]:
    return Call(
        "POST", f"{_tenant(tenant_id)}/conversations/{_seg(conversation_id)}/messages", {"from": sender}, _decision
    )


def ingest(tenant_id: str, events: Sequence[dict[str, Any]]) -> Call[IngestResult]:
    return Call(
        "POST", f"{_tenant(tenant_id)}/usage/events", {"events": list(events)}, lambda r: IngestResult.of(r.json())
    )


def usage(tenant_id: str) -> Call[Usage]:
    return Call("GET", f"{_tenant(tenant_id)}/usage", None, lambda r: Usage.of(r.json()))


def create_tenant(tenant_id: str, *, name: str, owner_email: str) -> Call[dict[str, Any]]:
    return Call("POST", "/v1/tenants", {"id": tenant_id, "name": name, "owner_email": owner_email}, _json)


def issue_key(tenant_id: str, *, role: str, name: str) -> Call[IssuedKey]:
    def read(response: httpx.Response) -> IssuedKey:
        body = response.json()
        return IssuedKey(body["key_id"], body["secret"], body["role"], body.get("tenant_id"))

    return Call("POST", f"{_tenant(tenant_id)}/api-keys", {"role": role, "name": name}, read)


def subscribe(tenant_id: str, *, catalog: str, plan: str, trial: bool) -> Call[dict[str, Any]]:
    return Call("POST", f"{_tenant(tenant_id)}/subscription", {"catalog": catalog, "plan": plan, "trial": trial}, _json)


def change_plan(tenant_id: str, *, plan: str, when: str | None) -> Call[dict[str, Any]]:
    body = {"plan": plan} | ({"when": when} if when else {})
    return Call("POST", f"{_tenant(tenant_id)}/subscription/change", body, _json)


def health() -> Call[bool]:
    return Call("GET", "/healthz", None, lambda r: r.text == "ok")


def raw(method: str, path: str, body: Any = None) -> Call[Any]:
    return Call(method.upper(), path, body, lambda r: r.json() if r.content else None)


# --- sending ---------------------------------------------------------------------------------
def headers(api_key: str, call: Call[Any], idempotency_key: str | None) -> dict[str, str]:
    """The call's headers; a write gets an Idempotency-Key (the caller's, or a new one) kept for every retry."""
    out = {"Authorization": f"Bearer {api_key}"}
    if call.writes:
        out["Idempotency-Key"] = idempotency_key or uuid.uuid4().hex
    return out


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to wait: 503 (and 429, 502, 504) honour Retry-After; a lost connection backs off."""

    retries: int = 3
    backoff: float = 0.25  # seconds, doubled after each try, when the answer names no Retry-After
    max_wait: float = 30.0

    def wait(self, attempt: int, response: httpx.Response | None) -> float | None:
        """Seconds to wait before try `attempt + 1`, or None to give up and answer."""
        if attempt >= self.retries:
            return None
        if response is not None and response.status_code not in RETRY_STATUSES:
            return None
        told = retry_after(response) if response is not None else None
        return min(self.max_wait, told if told is not None else self.backoff * (2**attempt))


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time()) if when else None


def answer(call: Call[T], response: httpx.Response) -> T:
    """The typed answer, or a `FareboxError` with the API's stable code."""
    if response.is_success:
        return call.read(response)
    try:
        error = response.json()["error"]
        raise FareboxError(response.status_code, error["code"], error["message"], error.get("details"))
    except (ValueError, KeyError, TypeError):
        raise FareboxError(response.status_code, "http_error", response.text[:200]) from None
