"""`Client` (blocking) and `AsyncClient` (asyncio) over httpx: the same operations, typed answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from farebox.client import _calls as calls
from farebox.client._calls import Call, Mode, RetryPolicy, Role, Sender
from farebox.client._models import Decision, IngestResult, IssuedKey, Usage

T = TypeVar("T")


def _options(base_url: str, timeout: float, transport: Any, limits: httpx.Limits | None) -> dict[str, Any]:
    return {"base_url": base_url, "timeout": timeout, "transport": transport} | ({"limits": limits} if limits else {})


class Client:
    """A blocking client.  Every write carries an `Idempotency-Key` (pass your own to retry across
    processes; otherwise one is made per call) that is reused when the call is retried after a 503
    (waiting as `Retry-After` says) or a lost connection, so a retry never counts twice (G4)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        limits: httpx.Limits | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        """`http`: an httpx client of your own (e.g. Starlette's TestClient) used as it is, base URL included."""
        self.api_key, self.retry = api_key, retry or RetryPolicy()
        self.http = http or httpx.Client(**_options(base_url, timeout, transport, limits))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def run(self, call: Call[T], *, idempotency_key: str | None = None) -> T:
        headers = calls.headers(self.api_key, call, idempotency_key)
        attempt = 0
        while True:
            try:
                response = self.http.request(call.method, call.path, json=call.body, headers=headers)
            except httpx.TransportError:
                wait = self.retry.wait(attempt, None)
                if wait is None:
                    raise
            else:
                wait = self.retry.wait(attempt, response)
                if wait is None:
                    return calls.answer(call, response)
            time.sleep(wait)
            attempt += 1

    # -- admission (the hot path) --
    def start(self, tenant_id: str, occurrence_id: str, *, idempotency_key: str | None = None) -> Decision:
        return self.run(calls.start(tenant_id, occurrence_id), idempotency_key=idempotency_key)

    def join(
        self,
        tenant_id: str,
        occurrence_id: str,
        person_id: str,
        *,
        mode: Mode = "live",
        role: Role = "attendee",
        idempotency_key: str | None = None,
    ) -> Decision:
        return self.run(
            calls.join(tenant_id, occurrence_id, person_id, mode=mode, role=role), idempotency_key=idempotency_key
        )

    def leave(
        self, tenant_id: str, occurrence_id: str, person_id: str, *, idempotency_key: str | None = None
    ) -> Decision:
        return self.run(calls.leave(tenant_id, occurrence_id, person_id), idempotency_key=idempotency_key)

    def register(
        self, tenant_id: str, occurrence_id: str, person_id: str, *, idempotency_key: str | None = None
    ) -> Decision:
        return self.run(calls.register(tenant_id, occurrence_id, person_id), idempotency_key=idempotency_key)

    def end(self, tenant_id: str, occurrence_id: str, *, idempotency_key: str | None = None) -> Decision:
        return self.run(calls.end(tenant_id, occurrence_id), idempotency_key=idempotency_key)

    def message(
        self, tenant_id: str, conversation_id: str, *, sender: Sender, idempotency_key: str | None = None
    ) -> Decision:
        return self.run(calls.message(tenant_id, conversation_id, sender=sender), idempotency_key=idempotency_key)

    def ingest(
        self, tenant_id: str, events: Sequence[dict[str, Any]], *, idempotency_key: str | None = None
    ) -> IngestResult:
        return self.run(calls.ingest(tenant_id, events), idempotency_key=idempotency_key)

    def usage(self, tenant_id: str) -> Usage:
        return self.run(calls.usage(tenant_id))

    # -- set-up (operator, owner) --
    def create_tenant(self, tenant_id: str, *, name: str, owner_email: str) -> dict[str, Any]:
        return self.run(calls.create_tenant(tenant_id, name=name, owner_email=owner_email))

    def issue_key(self, tenant_id: str, *, role: str = "owner", name: str = "") -> IssuedKey:
        return self.run(calls.issue_key(tenant_id, role=role, name=name))

    def subscribe(self, tenant_id: str, *, catalog: str, plan: str, trial: bool = False) -> dict[str, Any]:
        return self.run(calls.subscribe(tenant_id, catalog=catalog, plan=plan, trial=trial))

    def change_plan(self, tenant_id: str, *, plan: str, when: str | None = None) -> dict[str, Any]:
        return self.run(calls.change_plan(tenant_id, plan=plan, when=when))

    def health(self) -> bool:
        return self.run(calls.health())

    def request(self, method: str, path: str, body: Any = None, *, idempotency_key: str | None = None) -> Any:
        """Any other endpoint (docs/openapi.json): its JSON answer, with the same keys, retries and errors."""
        return self.run(calls.raw(method, path, body), idempotency_key=idempotency_key)


class AsyncClient:
    """`Client` for asyncio: the same operations, awaited."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: httpx.Limits | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.api_key, self.retry = api_key, retry or RetryPolicy()
        self.http = http or httpx.AsyncClient(**_options(base_url, timeout, transport, limits))

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def run(self, call: Call[T], *, idempotency_key: str | None = None) -> T:
        headers = calls.headers(self.api_key, call, idempotency_key)
        attempt = 0
        while True:
            try:
                response = await self.http.request(call.method, call.path, json=call.body, headers=headers)
            except httpx.TransportError:
                wait = self.retry.wait(attempt, None)
                if wait is None:
                    raise
            else:
                wait = self.retry.wait(attempt, response)
                if wait is None:
                    return calls.answer(call, response)
            await asyncio.sleep(wait)
            attempt += 1

    async def start(self, tenant_id: str, occurrence_id: str, *, idempotency_key: str | None = None) -> Decision:
        return await self.run(calls.start(tenant_id, occurrence_id), idempotency_key=idempotency_key)

    async def join(
        self,
        tenant_id: str,
        occurrence_id: str,
        person_id: str,
        *,
        mode: Mode = "live",
        role: Role = "attendee",
        idempotency_key: str | None = None,
    ) -> Decision:
        return await self.run(
            calls.join(tenant_id, occurrence_id, person_id, mode=mode, role=role), idempotency_key=idempotency_key
        )

    async def leave(
        self, tenant_id: str, occurrence_id: str, person_id: str, *, idempotency_key: str | None = None
    ) -> Decision:
        return await self.run(calls.leave(tenant_id, occurrence_id, person_id), idempotency_key=idempotency_key)

    async def register(
        self, tenant_id: str, occurrence_id: str, person_id: str, *, idempotency_key: str | None = None
    ) -> Decision:
        return await self.run(calls.register(tenant_id, occurrence_id, person_id), idempotency_key=idempotency_key)

    async def end(self, tenant_id: str, occurrence_id: str, *, idempotency_key: str | None = None) -> Decision:
        return await self.run(calls.end(tenant_id, occurrence_id), idempotency_key=idempotency_key)

    async def message(
        self, tenant_id: str, conversation_id: str, *, sender: Sender, idempotency_key: str | None = None
    ) -> Decision:
        return await self.run(calls.message(tenant_id, conversation_id, sender=sender), idempotency_key=idempotency_key)

    async def ingest(
        self, tenant_id: str, events: Sequence[dict[str, Any]], *, idempotency_key: str | None = None
    ) -> IngestResult:
        return await self.run(calls.ingest(tenant_id, events), idempotency_key=idempotency_key)

    async def usage(self, tenant_id: str) -> Usage:
        return await self.run(calls.usage(tenant_id))

    async def create_tenant(self, tenant_id: str, *, name: str, owner_email: str) -> dict[str, Any]:
        return await self.run(calls.create_tenant(tenant_id, name=name, owner_email=owner_email))

    async def issue_key(self, tenant_id: str, *, role: str = "owner", name: str = "") -> IssuedKey:
        return await self.run(calls.issue_key(tenant_id, role=role, name=name))

    async def subscribe(self, tenant_id: str, *, catalog: str, plan: str, trial: bool = False) -> dict[str, Any]:
        return await self.run(calls.subscribe(tenant_id, catalog=catalog, plan=plan, trial=trial))

    async def change_plan(self, tenant_id: str, *, plan: str, when: str | None = None) -> dict[str, Any]:
        return await self.run(calls.change_plan(tenant_id, plan=plan, when=when))

    async def health(self) -> bool:
        return await self.run(calls.health())

    async def request(self, method: str, path: str, body: Any = None, *, idempotency_key: str | None = None) -> Any:
        return await self.run(calls.raw(method, path, body), idempotency_key=idempotency_key)
