"""Ingestion: batches of usage events for what is not admitted live (late replay
views from logs, conversation messages), applied with the same counting rules.

Events are CloudEvents-shaped: `id`, `source`, `type`, `subject`, `time`,
`data`.  Each (`source`, `id`) counts once (G4): a repeat returns the first
answer; the same id with another payload is refused with `event_conflict`.
A bad event (F7: any string that storage cannot keep) is refused with its index
and reason; the rest of the batch is applied.  An event counts in the period
that contains its `time` (D3, `domain.late_usage`).

A batch is applied in chunks of `CHUNK` events, each one short transaction
(F2): an event is claimed in the transaction that applies it, so a batch cut
off half-way and sent again counts every event once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from farebox.adapters.db.repos import ingestion as ingest_repo
from farebox.adapters.db.repos import subscriptions as subs_repo
from farebox.adapters.db.uow import UnitOfWork
from farebox.bootstrap import Farebox
from farebox.domain import late_usage, reasons
from farebox.domain.access import Principal, require_tenant_access
from farebox.domain.admission import Decision, Mode, Role, refuse
from farebox.domain.clock import ensure_utc
from farebox.domain.conversations import Sender
from farebox.domain.reasons import DomainError
from farebox.domain.subscriptions import Subscription
from farebox.services import admission, ingestion_batch
from farebox.services.clocks import now_and_current

MAX_BATCH = 10_000
CHUNK = 500  # events per transaction: bounds how long a batch holds the rows live admission needs (F2)
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


@dataclass(frozen=True, slots=True)
class Parsed:
    """One event that passed validation."""

    index: int
    source: str
    id: str
    type: str
    time: datetime | None
    digest: str
    subject: str  # the occurrence or conversation id
    person_id: str | None = None
    sender: Sender | None = None
    mode: Mode = Mode.REPLAY
    role: Role = Role.ATTENDEE


def ingest(fb: Farebox, actor: Principal, tenant_id: str, events: list[dict[str, Any]]) -> IngestReport:
    require_tenant_access(actor, tenant_id)
    if len(events) > MAX_BATCH:
        raise DomainError(
            reasons.VALIDATION_ERROR, detail=f"a batch holds at most {MAX_BATCH} events", details={"field": "events"}
        )
    results: list[EventResult | None] = [None] * len(events)
    valid: list[Parsed] = []
    for index, event in enumerate(events):
        try:
            valid.append(_parse(index, event))
        except DomainError as exc:
            results[index] = EventResult(index, _echo_id(event), "refused", code=exc.code, message=exc.refusal.message)
    for chunk in _chunks(valid, CHUNK):
        with fb.uow() as uow:
            for result in _chunk(uow, fb, tenant_id, chunk, actor.label()):
                results[result.index] = result
            uow.commit()
    done = [r for r in results if r is not None]
    return IngestReport(
        received=len(events),
        applied=sum(r.status == "applied" for r in done),
        duplicates=sum(r.status == "duplicate" for r in done),
        refused=sum(r.status == "refused" for r in done),
        counted=sum(bool(r.status == "applied" and r.decision and r.decision["counted"]) for r in done),
        results=done,
    )


def _chunks(items: Sequence[Parsed], size: int) -> Iterator[Sequence[Parsed]]:
    """The chunks of a batch; one empty chunk when nothing is valid (the tenant is still looked up: 404)."""
    if not items:
        yield items
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _History:
    """The tenant's subscriptions and invoices, read once per chunk and only for an event outside the current period."""

    def __init__(self, uow: UnitOfWork, tenant_id: str, current: Subscription | None) -> None:
        self._uow, self._tenant_id, self.current = uow, tenant_id, current
        self._loaded: tuple[list[Subscription], dict[str, datetime]] | None = None

    def place(self, at: datetime) -> late_usage.Placement | late_usage.Refused:
        if late_usage.in_current_period(at, self.current):
            return late_usage.Placement(at, self.current)
        if self._loaded is None:
            conn = self._uow.conn
            self._loaded = (
                subs_repo.all_for_tenant(conn, self._tenant_id),
                ingest_repo.invoiced_until(conn, self._tenant_id),
            )
        return late_usage.place(at, *self._loaded)


def _chunk(uow: UnitOfWork, fb: Farebox, tenant_id: str, chunk: Sequence[Parsed], actor: str) -> list[EventResult]:
    """One transaction: claim the chunk's events in one statement, decide the new ones, answer the rest (G4)."""
    now, current = now_and_current(uow, fb.clock, tenant_id)
    history = _History(uow, tenant_id, current)
    placed: dict[int, late_usage.Placement | late_usage.Refused] = {}
    for p in chunk:
        at = late_usage.decision_time(p.time, now)
        placed[p.index] = history.place(at) if isinstance(at, datetime) else at
    # A refused event is not claimed: one sent too early may be sent again later.
    claimers: dict[tuple[str, str], Parsed] = {}
    for p in chunk:
        if isinstance(placed[p.index], late_usage.Placement):
            claimers.setdefault((p.source, p.id), p)

    def row(p: Parsed, result: dict[str, Any]) -> dict[str, Any]:
        return {
            "tenant_id": tenant_id,
            "source": p.source,
            "id": p.id,
            "payload_hash": p.digest,
            "type": p.type,
            "time": p.time,
            "result": result,
            "received_at": now,
        }

    if ingest_repo.claims_are_exclusive(uow.conn):
        # SQLite: one statement finds the events received before; the new ones are inserted with their answers.
        earlier = ingest_repo.events_by_key(uow.conn, tenant_id, [(p.source, p.id) for p in chunk])
        new = [p for key, p in claimers.items() if key not in earlier]
        answers = _decide(uow, tenant_id, new, placed, current, actor)
        ingest_repo.insert_events(uow.conn, tenant_id, [row(p, answers[p.index]) for p in new])
    else:
        # PostgreSQL: claimed first (a concurrent claim of the same event waits for ours), answered after.
        claimed = ingest_repo.claim_events(uow.conn, [row(p, {}) for p in claimers.values()])
        earlier = ingest_repo.events_by_key(
            uow.conn, tenant_id, [(p.source, p.id) for p in chunk if (p.source, p.id) not in claimed]
        )
        new = [p for key, p in claimers.items() if key in claimed]
        answers = _decide(uow, tenant_id, new, placed, current, actor)
        ingest_repo.set_results(uow.conn, tenant_id, [(p.source, p.id, answers[p.index]) for p in new])
    firsts = {(p.source, p.id): {"payload_hash": p.digest, "result": answers[p.index]} for p in new}
    results: list[EventResult] = []
    for p in chunk:
        key, where = (p.source, p.id), placed[p.index]
        if key in firsts and claimers[key] is p:
            results.append(EventResult(p.index, p.id, "applied", decision=answers[p.index]))
        elif key in firsts or key in earlier:
            results.append(_repeated(p, firsts.get(key) or earlier[key]))
        else:
            assert isinstance(where, late_usage.Refused), f"event {key} was neither claimed nor found"
            results.append(EventResult(p.index, p.id, "refused", code=where.reason.code, message=where.message))
    return results


def _decide(
    uow: UnitOfWork,
    tenant_id: str,
    new: Sequence[Parsed],
    placed: dict[int, Any],
    current: Subscription | None,
    actor: str,
) -> dict[int, dict[str, Any]]:
    """The answers of the newly claimed events: late ones (another period) one by one first, then the others,
    in sets (`ingestion_batch`) when the plan allows it, else one by one with the very same rules."""
    fast = current is not None and ingestion_batch.eligible(uow, tenant_id, current)
    # members and co-hosts take host seats and need plan features (S2): such a chunk goes one by one, in order
    fast = fast and not any(p.type == "attendee.joined" and p.role is not Role.ATTENDEE for p in new)
    answers: dict[int, dict[str, Any]] = {}
    batch: list[ingestion_batch.Item] = []
    for p in new:
        where = placed[p.index]
        if fast and where.subscription is current:
            batch.append(
                ingestion_batch.Item(
                    p.index, f"{p.source}/{p.id}", p.type, p.subject, where.at, p.person_id, p.sender, p.mode, p.role
                )
            )
        else:
            answers[p.index] = _apply(uow, tenant_id, p, where, actor, cause=f"event {p.source}/{p.id}").as_dict()
    if batch:
        assert current is not None
        decided = ingestion_batch.apply(uow, tenant_id, current, batch, actor=actor)
        answers.update({index: d.as_dict() for index, d in decided.items()})
    return answers


def _repeated(p: Parsed, first: dict[str, Any]) -> EventResult:
    """G4: the same (source, id) again: its first answer, or a conflict when the payload differs."""
    if first["payload_hash"] != p.digest:
        return EventResult(
            p.index, p.id, "refused", code=reasons.EVENT_CONFLICT.code, message=reasons.EVENT_CONFLICT.message()
        )
    return EventResult(p.index, p.id, "duplicate", decision=first["result"])


def _apply(
    uow: UnitOfWork, tenant_id: str, p: Parsed, placed: late_usage.Placement, actor: str, *, cause: str
) -> Decision:
    at, sub = placed.at, placed.subscription
    if p.type == "conversation.message":
        assert p.sender is not None
        return admission.message_in(uow, tenant_id, p.subject, p.sender, now=at, actor=actor, cause=cause, sub=sub)
    assert p.person_id is not None
    if p.type == "attendee.registered":
        return admission.register_in(uow, tenant_id, p.subject, p.person_id, now=at)
    if p.type == "attendee.left":
        try:
            return admission.leave_in(uow, tenant_id, p.subject, p.person_id, now=at)
        except DomainError as exc:
            if exc.code != reasons.NOT_FOUND.code:
                raise
            # a usage event may tell of a leave from an occurrence farebox never saw: recorded as left, as the
            # batch path answers it (the API's `leave` answers not_found, D16)
            return Decision(False, False, reasons.LEFT.code, reasons.LEFT.message())
    if sub is None:
        return refuse(reasons.SUBSCRIPTION_EXPIRED)
    return admission.join_in(
        uow, tenant_id, p.subject, p.person_id, mode=p.mode, role=p.role, now=at, actor=actor, cause=cause, sub=sub
    )


# --- validation (F7) --------------------------------------------------------------------------


def digest_of(event: dict[str, Any]) -> str:
    """The payload hash that tells a resent event (a duplicate) from another one with its id (a conflict)."""
    return hashlib.sha256(json.dumps(event, sort_keys=True, default=str).encode()).hexdigest()


def _echo_id(event: Any) -> str | None:
    """A refused event's id, echoed only when it is text that can be answered."""
    value = event.get("id") if isinstance(event, dict) else None
    return value if isinstance(value, str) and _unstorable(value, "id") is None else None


def _unstorable(value: Any, path: str) -> str | None:
    """The path of the first string (key or value) that no storage engine keeps: a lone surrogate or a NUL."""
    if isinstance(value, str):
        if "\x00" in value:
            return path
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _unstorable(key, path) or _unstorable(item, f"{path}.{key}")
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _unstorable(item, f"{path}.{i}")
            if found is not None:
                return found
    return None


def _text(data: dict[str, Any], key: str, limit: int = 255) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise DomainError(
            reasons.EVENT_INVALID, detail=f"`{key}` must be text of 1 to {limit} characters", details={"field": key}
        )
    return value


def _parse(index: int, event: Any) -> Parsed:
    if not isinstance(event, dict):
        raise DomainError(reasons.EVENT_INVALID, detail="an event is an object")
    for key, value in event.items():
        bad = _unstorable(key, "event") or _unstorable(value, str(key))
        if bad is not None:
            raise DomainError(
                reasons.EVENT_INVALID,
                detail=f"`{bad}` holds a character that cannot be stored (a NUL or a lone UTF-16 surrogate)",
                details={"field": bad},
            )
    event_id, source, kind = _text(event, "id"), _text(event, "source"), _text(event, "type", 128)
    if kind not in TYPES:
        raise DomainError(
            reasons.EVENT_INVALID, detail=f"`type` must be one of {', '.join(TYPES)}", details={"field": "type"}
        )
    time = None
    if event.get("time") is not None:
        try:
            time = ensure_utc(datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00")))
        except (ValueError, TypeError):
            raise DomainError(
                reasons.EVENT_INVALID, detail="`time` must be an RFC 3339 timestamp", details={"field": "time"}
            ) from None
    data = event.get("data")
    if not isinstance(data, dict):
        raise DomainError(reasons.EVENT_INVALID, detail="`data` must be an object", details={"field": "data"})
    digest = digest_of(event)
    if kind == "conversation.message":
        conversation = _text(data, "conversation_id", admission.MAX_ID)
        return Parsed(
            index, source, event_id, kind, time, digest, conversation, sender=_choice(Sender, data.get("from"), "from")
        )
    return Parsed(
        index,
        source,
        event_id,
        kind,
        time,
        digest,
        _text(data, "occurrence_id", admission.MAX_ID),
        person_id=_text(data, "person_id", 128),
        mode=_choice(Mode, data.get("mode", "replay"), "mode"),
        role=_choice(Role, data.get("role", "attendee"), "role"),
    )


def _choice(kind: Any, value: Any, name: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise DomainError(
            reasons.EVENT_INVALID,
            detail=f"`{name}` must be one of {', '.join(v.value for v in kind)}",
            details={"field": name},
        ) from None
