"""Ingestion: batches of usage events for what is not admitted live (late replay
views from logs, conversation messages), applied with the same counting rules.

Events are CloudEvents-shaped: `id`, `source`, `type`, `subject`, `time`,
`data`.  Each (`source`, `id`) counts once (G4): a repeat returns the first
answer; the same id with another payload is refused with `event_conflict`.
A bad event is refused with its index and reason; the rest of the batch is
applied.  A batch is one transaction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from farebox.adapters.db.repos import metering as repo
from farebox.adapters.db.uow import UnitOfWork
from farebox.bootstrap import Farebox
from farebox.domain import reasons
from farebox.domain.access import Principal, require_tenant_access
from farebox.domain.admission import Decision, Mode, Role
from farebox.domain.clock import ensure_utc
from farebox.domain.conversations import Sender
from farebox.domain.reasons import DomainError
from farebox.services import admission
from farebox.services.clocks import now_for

MAX_BATCH = 10_000
TYPES = ("attendee.joined", "attendee.registered", "attendee.left", "conversation.message")


@dataclass(frozen=True)
class EventResult:
    index: int
    id: str | None
    status: str  # applied | duplicate | refused
    decision: dict[str, Any] | None = None  # the admission answer (applied, duplicate)
    code: str | None = None  # refused: the reason code
    message: str | None = None


@dataclass(frozen=True)
class IngestReport:
    received: int
    applied: int
    duplicates: int
    refused: int
    counted: int
    results: list[EventResult] = field(default_factory=list)


def ingest(fb: Farebox, actor: Principal, tenant_id: str, events: list[dict[str, Any]]) -> IngestReport:
    require_tenant_access(actor, tenant_id)
    if len(events) > MAX_BATCH:
        raise DomainError(
            reasons.VALIDATION_ERROR, detail=f"a batch holds at most {MAX_BATCH} events", details={"field": "events"}
        )
    results: list[EventResult] = []
    with fb.uow() as uow:
        now = now_for(uow, fb.clock, tenant_id)
        for index, event in enumerate(events):
            results.append(_one(uow, tenant_id, index, event, now, actor.label()))
        uow.commit()
    return IngestReport(
        received=len(events),
        applied=sum(r.status == "applied" for r in results),
        duplicates=sum(r.status == "duplicate" for r in results),
        refused=sum(r.status == "refused" for r in results),
        counted=sum(bool(r.status == "applied" and r.decision and r.decision["counted"]) for r in results),
        results=results,
    )


def _one(uow: UnitOfWork, tenant_id: str, index: int, event: Any, now: datetime, actor: str) -> EventResult:
    try:
        parsed = _parse(event)
    except DomainError as exc:
        return EventResult(
            index,
            event.get("id") if isinstance(event, dict) else None,
            "refused",
            code=exc.code,
            message=exc.refusal.message,
        )
    source, event_id = parsed["source"], parsed["id"]
    digest = hashlib.sha256(json.dumps(event, sort_keys=True, default=str).encode()).hexdigest()
    at = min(parsed["time"], now) if parsed["time"] else now
    claimed = repo.claim_event(
        uow.conn,
        tenant_id=tenant_id,
        source=source,
        id=event_id,
        payload_hash=digest,
        type=parsed["type"],
        time=parsed["time"],
        result={},
        received_at=now,
    )
    if not claimed:
        first = repo.get_event(uow.conn, tenant_id, source, event_id)
        assert first is not None
        if first["payload_hash"] != digest:
            return EventResult(
                index, event_id, "refused", code=reasons.EVENT_CONFLICT.code, message=reasons.EVENT_CONFLICT.message()
            )
        return EventResult(index, event_id, "duplicate", decision=first["result"])
    try:
        decision = _apply(uow, tenant_id, parsed, at, actor, cause=f"event {source}/{event_id}")
    except DomainError as exc:
        # Validation happens before any write, so nothing of this event was applied.
        repo.set_event_result(uow.conn, tenant_id, source, event_id, {"refused": exc.code})
        return EventResult(index, event_id, "refused", code=exc.code, message=exc.refusal.message)
    answer = decision.as_dict()
    repo.set_event_result(uow.conn, tenant_id, source, event_id, answer)
    return EventResult(index, event_id, "applied", decision=answer)


def _text(data: dict[str, Any], key: str, limit: int = 255) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > limit or "\x00" in value:
        raise DomainError(
            reasons.EVENT_INVALID, detail=f"`{key}` must be text of 1 to {limit} characters", details={"field": key}
        )
    return value


def _parse(event: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise DomainError(reasons.EVENT_INVALID, detail="an event is an object")
    parsed: dict[str, Any] = {
        "id": _text(event, "id"),
        "source": _text(event, "source"),
        "type": _text(event, "type", 128),
    }
    if parsed["type"] not in TYPES:
        raise DomainError(
            reasons.EVENT_INVALID, detail=f"`type` must be one of {', '.join(TYPES)}", details={"field": "type"}
        )
    parsed["time"] = None
    if event.get("time") is not None:
        try:
            parsed["time"] = ensure_utc(datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00")))
        except (ValueError, TypeError):
            raise DomainError(
                reasons.EVENT_INVALID, detail="`time` must be an RFC 3339 timestamp", details={"field": "time"}
            ) from None
    data = event.get("data")
    if not isinstance(data, dict):
        raise DomainError(reasons.EVENT_INVALID, detail="`data` must be an object", details={"field": "data"})
    if parsed["type"] == "conversation.message":
        parsed["conversation_id"] = _text(data, "conversation_id", admission.MAX_ID)
        parsed["sender"] = _choice(Sender, data.get("from"), "from")
    else:
        parsed["occurrence_id"] = _text(data, "occurrence_id", admission.MAX_ID)
        parsed["person_id"] = _text(data, "person_id", 128)
        parsed["mode"] = _choice(Mode, data.get("mode", "replay"), "mode")
        parsed["role"] = _choice(Role, data.get("role", "attendee"), "role")
    return parsed


def _choice(kind: Any, value: Any, name: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise DomainError(
            reasons.EVENT_INVALID,
            detail=f"`{name}` must be one of {', '.join(v.value for v in kind)}",
            details={"field": name},
        ) from None


def _apply(uow: UnitOfWork, tenant_id: str, e: dict[str, Any], at: datetime, actor: str, *, cause: str) -> Decision:
    kind = e["type"]
    if kind == "conversation.message":
        return admission.message_in(uow, tenant_id, e["conversation_id"], e["sender"], now=at, actor=actor, cause=cause)
    if kind == "attendee.registered":
        return admission.register_in(uow, tenant_id, e["occurrence_id"], e["person_id"], now=at)
    if kind == "attendee.left":
        return admission.leave_in(uow, tenant_id, e["occurrence_id"], e["person_id"], now=at)
    return admission.join_in(
        uow,
        tenant_id,
        e["occurrence_id"],
        e["person_id"],
        mode=e["mode"],
        role=e["role"],
        now=at,
        actor=actor,
        cause=cause,
    )
