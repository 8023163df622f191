"""`farebox.client` (issue 16 item 6): typed answers, an Idempotency-Key per call reused on its
retries, 503 with Retry-After retried, errors with the stable code, reason constants from the registry."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from farebox.client import AsyncClient, Client, Decision, FareboxError, RetryPolicy, reasons
from farebox.client._calls import RetryPolicy as Policy
from farebox.kernel import reasons as registry

ADMITTED = {
    "admitted": True,
    "counted": True,
    "reason": "admitted",
    "message": "Admitted.",
    "warnings": [],
    "position": None,
    "deadline": "2026-01-05T10:30:00Z",
}
NO_WAIT = RetryPolicy(retries=3, backoff=0.0)


class Server:
    """A fake farebox: answers 503 (Retry-After: 0) `busy` times, then a decision; records every request."""

    def __init__(self, busy: int = 0, lost: int = 0) -> None:
        self.busy, self.lost = busy, lost
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.lost:
            self.lost -= 1
            raise httpx.ConnectError("connection refused", request=request)
        if self.busy:
            self.busy -= 1
            body = {"error": {"code": "storage_unavailable", "message": "Retry.", "details": {}}}
            return httpx.Response(503, json=body, headers={"Retry-After": "0"})
        return httpx.Response(200, json=ADMITTED)

    def keys(self) -> list[str | None]:
        return [r.headers.get("idempotency-key") for r in self.requests]


def test_issue16_a_call_retries_503_with_the_same_idempotency_key_and_the_next_call_gets_a_new_one():
    server = Server(busy=2)
    with Client("http://farebox", "k", transport=httpx.MockTransport(server), retry=NO_WAIT) as client:
        decision = client.join("acme", "webinar 1", "p/1", mode="replay")
        assert decision == Decision(True, True, reasons.ADMITTED, "Admitted.", (), None, decision.deadline)
        assert decision.deadline is not None and decision.deadline.utcoffset() is not None
        first_call = server.keys()
        assert len(first_call) == 3 and len(set(first_call)) == 1 and first_call[0]
        client.join("acme", "webinar 1", "p/2")
    assert server.keys()[3] not in first_call
    request = server.requests[0]
    assert request.url.raw_path == b"/v1/tenants/acme/occurrences/webinar%201/join"
    assert json.loads(request.content) == {"person_id": "p/1", "mode": "replay", "role": "attendee"}
    assert request.headers["authorization"] == "Bearer k"


def test_issue16_a_lost_connection_is_retried_with_the_same_key_and_a_caller_key_is_kept():
    server = Server(lost=1)
    with Client("http://farebox", "k", transport=httpx.MockTransport(server), retry=NO_WAIT) as client:
        client.message("acme", "c1", sender="customer", idempotency_key="mine")
    assert server.keys() == ["mine", "mine"]


def test_issue16_retries_stop_and_the_error_carries_the_code():
    server = Server(busy=10)
    with Client(
        "http://farebox", "k", transport=httpx.MockTransport(server), retry=RetryPolicy(retries=2, backoff=0.0)
    ) as client:
        with pytest.raises(FareboxError) as error:
            client.start("acme", "o1")
    assert (error.value.status_code, error.value.code) == (503, reasons.STORAGE_UNAVAILABLE) and len(
        server.requests
    ) == 3


def test_issue16_a_refusal_is_not_retried_and_reads_never_carry_a_key():
    calls: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "Tenant not found.", "details": {}}})

    with Client("http://farebox", "k", transport=httpx.MockTransport(refuse), retry=NO_WAIT) as client:
        with pytest.raises(FareboxError) as error:
            client.usage("nope")
    assert error.value.code == reasons.NOT_FOUND and len(calls) == 1 and "idempotency-key" not in calls[0].headers


def test_issue16_retry_after_is_honoured_and_bounded():
    policy = Policy(retries=3, backoff=0.5, max_wait=10.0)
    busy = httpx.Response(503, headers={"Retry-After": "2"})
    assert policy.wait(0, busy) == 2.0
    assert policy.wait(0, httpx.Response(503, headers={"Retry-After": "3600"})) == 10.0
    assert policy.wait(1, httpx.Response(503)) == 1.0  # no header: 0.5 s doubled
    assert policy.wait(3, busy) is None and policy.wait(0, httpx.Response(409)) is None


def test_issue16_async_client_retries_with_the_same_key():
    server = Server(busy=1)

    async def run() -> Decision:
        async with AsyncClient("http://farebox", "k", transport=httpx.MockTransport(server), retry=NO_WAIT) as client:
            return await client.join("acme", "o1", "p1")

    assert asyncio.run(run()).admitted is True
    keys = server.keys()
    assert len(keys) == 2 and keys[0] == keys[1]


def test_issue16_every_reason_of_the_registry_is_a_client_constant():
    for name, value in vars(registry).items():
        if isinstance(value, registry.Reason):
            assert getattr(reasons, name) == value.code, name
