"""A client for the platforms that integrate farebox (httpx; blocking and asyncio).

    from farebox.client import Client, reasons

    with Client("http://127.0.0.1:8000", api_key=KEY) as farebox:
        decision = farebox.join("acme", "webinar-42", person_id="p-1")
        if decision.reason == reasons.CREDITS_EXHAUSTED: ...

Writes carry an `Idempotency-Key`, made per call and reused on its retries (503 with
`Retry-After`, lost connections); error answers raise `FareboxError` with the stable code.
"""

from farebox.client import reasons
from farebox.client._calls import RetryPolicy
from farebox.client._client import AsyncClient, Client
from farebox.client._models import Decision, EventResult, FareboxError, IngestResult, IssuedKey, MeterUsage, Usage

__all__ = [
    "AsyncClient",
    "Client",
    "Decision",
    "EventResult",
    "FareboxError",
    "IngestResult",
    "IssuedKey",
    "MeterUsage",
    "RetryPolicy",
    "Usage",
    "reasons",
]
