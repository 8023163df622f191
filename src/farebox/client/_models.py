"""Typed answers of the farebox API, as the client returns them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


@dataclass(frozen=True, slots=True)
class Decision:
    """An admission answer: a refusal of entry is a decision with `admitted` false, not an error (G15)."""

    admitted: bool
    counted: bool
    reason: str  # compare with `farebox.client.reasons`
    message: str
    warnings: tuple[str, ...] = ()
    position: int | None = None  # place in the waiting room
    deadline: datetime | None = None  # when the occurrence must end (S6)
    replayed: bool = False  # the answer of an earlier call with the same Idempotency-Key
    warning_codes: tuple[str, ...] = ()  # each warning's stable code, in the same order (G15)
    started: bool = False  # this call opened the occurrence

    @classmethod
    def of(cls, body: dict[str, Any], *, replayed: bool = False) -> Decision:
        return cls(
            admitted=bool(body["admitted"]),
            counted=bool(body["counted"]),
            reason=body["reason"],
            message=body["message"],
            warnings=tuple(body.get("warnings") or ()),
            position=body.get("position"),
            deadline=_when(body.get("deadline")),
            replayed=replayed,
            warning_codes=tuple(body.get("warning_codes") or ()),
            started=bool(body.get("started", False)),
        )


@dataclass(frozen=True, slots=True)
class EventResult:
    index: int
    id: str | None
    status: str  # applied | duplicate | refused
    decision: Decision | None
    code: str | None
    message: str | None


@dataclass(frozen=True, slots=True)
class IngestResult:
    received: int
    applied: int
    duplicates: int
    refused: int
    counted: int
    results: tuple[EventResult, ...] = field(default=())

    @classmethod
    def of(cls, body: dict[str, Any]) -> IngestResult:
        results = tuple(
            EventResult(
                r["index"],
                r.get("id"),
                r["status"],
                Decision.of(r["decision"]) if r.get("decision") else None,
                r.get("code"),
                r.get("message"),
            )
            for r in body["results"]
        )
        return cls(body["received"], body["applied"], body["duplicates"], body["refused"], body["counted"], results)


@dataclass(frozen=True, slots=True)
class MeterUsage:
    meter: str
    unit: str
    used: int
    included: int | None
    limit: int | None
    left: int | None
    percent: int | None
    overage: int
    period_start: datetime | None
    period_end: datetime | None


@dataclass(frozen=True, slots=True)
class Usage:
    tenant_id: str
    plan: str | None
    meters: tuple[MeterUsage, ...]

    @classmethod
    def of(cls, body: dict[str, Any]) -> Usage:
        meters = tuple(
            MeterUsage(
                m["meter"],
                m["unit"],
                m["used"],
                m.get("included"),
                m.get("limit"),
                m.get("left"),
                m.get("percent"),
                m.get("overage", 0),
                _when(m.get("period_start")),
                _when(m.get("period_end")),
            )
            for m in body["meters"]
        )
        return cls(body["tenant_id"], body.get("plan"), meters)

    def meter(self, name: str) -> MeterUsage:
        return next(m for m in self.meters if m.meter == name)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key_id: str
    secret: str
    role: str
    tenant_id: str | None


class FareboxError(Exception):
    """An error answer (4xx, or 5xx after the retries): the stable `code`, the message, the details."""

    def __init__(self, status_code: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status_code} {code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details if details is not None else {}
