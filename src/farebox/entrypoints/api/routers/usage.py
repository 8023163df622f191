"""Usage API: current usage, the chart, the largest items, the session limit (A6), ingestion, verify."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, model_validator

from farebox.entrypoints import metrics
from farebox.entrypoints.api.deps import FB, Caller, IdempotencyKey, idempotent
from farebox.entrypoints.api.schemas import PER_EVENT, Body, JsonInt
from farebox.metering.services import ingestion
from farebox.metering.services import usage as service

router = APIRouter(tags=["usage"])


class MeterUsageOut(BaseModel):
    meter: str
    kind: str
    scope: str
    unit: str
    used: int
    included: int | None
    limit: int | None
    left: int | None
    percent: int | None
    overage: int
    carried_in: int
    policy: str | None
    session_limit: int | None
    customer_limit_allowed: bool
    period_start: datetime
    period_end: datetime


class UsageOut(BaseModel):
    tenant_id: str
    subscription_id: str | None
    plan: str | None
    period_start: datetime | None
    period_end: datetime | None
    meters: list[MeterUsageOut]


class DailyOut(BaseModel):
    day: date
    meter: str
    units: int


class TopOut(BaseModel):
    kind: str
    id: str
    units: int
    at: datetime | None


class SessionLimitIn(Body):
    sessions: JsonInt = Field(gt=0, le=1_000_000_000, description="A6: a whole number greater than zero")


class SessionLimitOut(BaseModel):
    meter: str
    before: int | None
    after: int | None
    base: int | None


class EventsIn(Body):
    events: list[dict[str, Any]] = Field(
        max_length=ingestion.MAX_BATCH,
        description=(
            "CloudEvents-shaped: id, source, type, subject, time, data. An event holding text that cannot be stored "
            "(a NUL, a lone UTF-16 surrogate) is refused on its own as event_invalid; the rest are applied (F7)."
        ),
        json_schema_extra={PER_EVENT: True},
    )

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        """Ingestion checks every string of each event itself (F7): no walk through 10,000 events here."""
        return data


class EventResultOut(BaseModel):
    index: int
    id: str | None
    status: str
    decision: dict[str, Any] | None
    code: str | None
    message: str | None


class IngestOut(BaseModel):
    received: int
    applied: int
    duplicates: int
    refused: int
    counted: int
    results: list[EventResultOut]


@router.get(
    "/v1/tenants/{tenant_id}/usage", response_model=UsageOut, summary="Usage this period, per meter (owner, admin)"
)
def current_usage(tenant_id: str, fb: FB, caller: Caller):
    return service.usage_summary(fb, caller, tenant_id)


@router.get(
    "/v1/tenants/{tenant_id}/usage/daily",
    response_model=list[DailyOut],
    summary="Units per day this period (owner, admin)",
)
def daily(tenant_id: str, fb: FB, caller: Caller):
    return service.daily_usage(fb, caller, tenant_id)


@router.get(
    "/v1/tenants/{tenant_id}/usage/top",
    response_model=list[TopOut],
    summary="The largest occurrences and conversations this period (owner, admin)",
)
def top(tenant_id: str, fb: FB, caller: Caller, limit: int = Query(default=10, ge=1, le=100)):
    return service.top_usage(fb, caller, tenant_id, limit)


@router.put(
    "/v1/tenants/{tenant_id}/usage/session-limit",
    response_model=SessionLimitOut,
    summary="Set the monthly session limit (A6; owner, admin)",
)
def set_limit(tenant_id: str, body: SessionLimitIn, fb: FB, caller: Caller, key: IdempotencyKey = None):
    return idempotent(fb, caller, key, {"op": "set_limit", "tenant": tenant_id, "sessions": body.sessions},
                      lambda: service.set_session_limit(fb, caller, tenant_id, body.sessions))


@router.delete(
    "/v1/tenants/{tenant_id}/usage/session-limit",
    response_model=SessionLimitOut,
    summary="Reset the session limit to the plan's base (A6)",
)
def reset_limit(tenant_id: str, fb: FB, caller: Caller, key: IdempotencyKey = None):
    return idempotent(
        fb,
        caller,
        key,
        {"op": "reset_limit", "tenant": tenant_id},
        lambda: service.reset_session_limit(fb, caller, tenant_id),
    )


@router.post(
    "/v1/tenants/{tenant_id}/usage/events",
    response_model=IngestOut,
    summary="Ingest a batch of usage events (up to 10,000); each (source, id) counts once (G4)",
)
def ingest(tenant_id: str, body: EventsIn, fb: FB, caller: Caller, key: IdempotencyKey = None):
    # The report as plain JSON values: FastAPI's generic encoding of 10,000 results cost more than ingesting them.
    # Each chunk of the batch commits on its own (F2), also under an Idempotency-Key: the answer is stored after.
    def run() -> dict[str, Any]:
        report = ingestion.ingest(fb, caller, tenant_id, body.events)
        metrics.count_ingested(report.applied, report.duplicates, report.refused)
        return report.as_dict()

    return idempotent(fb, caller, key, {"op": "ingest", "tenant": tenant_id, "events": body.events}, run,
                      plain=True, in_steps=True)


@router.get(
    "/v1/usage/verify",
    response_model=list[dict[str, Any]],
    summary="Recompute every counter from the ledger; the differences (operator)",
)
def verify(fb: FB, caller: Caller, tenant_id: str | None = Query(default=None, max_length=64)):
    return service.verify(fb, caller, tenant_id)
