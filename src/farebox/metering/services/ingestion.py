"""Ingestion: batches of usage events for what is not admitted live (late replay
views from logs, conversation messages), applied with the same counting rules.

Events are CloudEvents-shaped: `id`, `source`, `type`, `subject`, `time`,
`data`.  Each (`source`, `id`) counts once (G4): a repeat returns the first
answer; the same id with another payload is refused with `event_conflict`.
A bad event (any string that storage cannot keep: a NUL, a lone UTF-16 surrogate) is refused with its index
and reason; the rest of the batch is applied.  An event counts in the period
that contains its `time` (`metering.domain.late_usage`).

A batch is applied in chunks of `CHUNK` events, each one short transaction (live
admission of the same tenant never waits behind a whole batch): an event is claimed in
the transaction that applies it, so a batch cut off half-way and sent again counts
every event once.
"""

from __future__ import annotations

import gc
import hashlib
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

import orjson

from farebox.bootstrap import Farebox
from farebox.clocks.service import now_and_current
from farebox.kernel import reasons
from farebox.kernel.access import Principal, require_tenant_access
from farebox.kernel.clock import ensure_utc
from farebox.kernel.reasons import DomainError
from farebox.metering.db import ingestion as ingest_repo
from farebox.metering.domain import late_usage
from farebox.metering.domain.admission import Decision, Mode, Role, refuse
from farebox.metering.domain.conversations import Sender
from farebox.metering.services import admission, ingestion_batch
from farebox.storage.uow import UnitOfWork
from farebox.subscriptions import db as subs_repo
from farebox.subscriptions.domain.states import Subscription

MAX_BATCH = 10_000
CHUNK = 1000  # events per transaction: bounds how long a batch holds the rows live admission needs
TYPES = ("attendee.joined", "attendee.registered", "attendee.left", "conversation.message")


@dataclass(slots=True)
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

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON values (the answers are JSON values already): what the API returns."""
        return {
            "received": self.received,
            "applied": self.applied,
            "duplicates": self.duplicates,
            "refused": self.refused,
            "counted": self.counted,
            "results": [
                {"index": r.index, "id": r.id, "status": r.status, "decision": r.decision, "code": r.code,
                 "message": r.message}
                for r in self.results
            ],
        }


Parsed = ingestion_batch.Item  # one event that passed validation


# An event with a text `source` and `id`: its key and payload hash, before any other check (a plain tuple: one is
# made per event): its index in the batch, the event, (source, id), id, payload hash, and whether it is clean (no
# escaped character in its JSON: every string in it can be stored and looked up).
_Received = tuple[int, dict[str, Any], tuple[str, str], str, str, bool]


def ingest(fb: Farebox, actor: Principal, tenant_id: str, events: list[dict[str, Any]]) -> IngestReport:
    require_tenant_access(actor, tenant_id)
    if len(events) > MAX_BATCH:
        raise DomainError(
            reasons.VALIDATION_ERROR, detail=f"a batch holds at most {MAX_BATCH} events", details={"field": "events"}
        )
    with _collector_paused():
        return _ingest(fb, actor, tenant_id, events)


_pause_lock = threading.Lock()
_pauses = 0  # batches being ingested in this process now
_resume = False  # whether the last of them turns the collector back on


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while batches are ingested (on again after the last one).  A batch
    makes tens of thousands of objects that live until its report is returned, and each of them counts towards
    the next collection: two batches of 10,000 new events ran some 170 collections, one of them over the whole
    heap, a tenth of their time (docs/performance.md).  Reference counting still frees everything a batch drops;
    nothing a batch makes is cyclic garbage (`tests/integration/test_ingestion.py` checks).  A batch that ends
    while others still run collects once, so that batches that keep overlapping never leave the process's other
    garbage uncollected."""
    global _pauses, _resume
    with _pause_lock:
        if _pauses == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            others = _pauses > 0
            if not others and _resume:
                gc.enable()
        if others and _resume:
            gc.collect()


def _ingest(fb: Farebox, actor: Principal, tenant_id: str, events: list[dict[str, Any]]) -> IngestReport:
    results: list[EventResult | None] = [None] * len(events)
    received: list[_Received] = []
    digest_and_check = _digest
    for index, event in enumerate(events):
        # an event's key and payload hash, when its `source` and `id` are text (else `_parse` says what is wrong)
        if isinstance(event, dict):
            source, event_id = event.get("source"), event.get("id")
            if isinstance(source, str) and isinstance(event_id, str):
                try:
                    digest, clean = digest_and_check(event)
                except (TypeError, ValueError, RecursionError):  # an in-process caller's object: not JSON values
                    refusal = reasons.EVENT_INVALID
                    detail = "the event must be made of JSON values (text keys, no object inside itself)"
                    results[index] = EventResult(
                        index, event_id, "refused", code=refusal.code, message=refusal.message(detail=detail)
                    )
                    continue
                received.append((index, event, (source, event_id), event_id, digest, clean))
                continue
        try:
            _parse(index, event, digest="")
            raise AssertionError("an event without a text source and id passed validation")  # pragma: no cover
        except DomainError as exc:
            results[index] = EventResult(index, _echo_id(event), "refused", code=exc.code, message=exc.refusal.message)
    answers = _Answers()
    for chunk in _chunks(received, CHUNK):
        with fb.uow() as uow:
            for result in _chunk(uow, fb, tenant_id, chunk, actor.label(), answers):
                results[result.index] = result
            uow.commit()
    done = [r for r in results if r is not None]
    statuses = Counter(r.status for r in done)
    counted = sum(1 for r in done if r.status == "applied" and r.decision and r.decision["counted"])
    applied, duplicates = statuses["applied"], statuses["duplicate"]
    return IngestReport(len(events), applied, duplicates, len(done) - applied - duplicates, counted, done)


def _chunks(items: Sequence[_Received], size: int) -> Iterator[Sequence[_Received]]:
    """The chunks of a batch; one empty chunk when nothing is valid (the tenant is still looked up: 404)."""
    if not items:
        yield items
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Answers:
    """Answers as stored (JSON text) and as returned (dicts), each distinct answer encoded and decoded once per
    batch: most events of a batch share a handful of answers.  The dicts returned are shared: read-only."""

    def __init__(self) -> None:
        self._decoded: dict[str, dict[str, Any]] = {}
        self._encoded: dict[int, tuple[Decision, dict[str, Any], str]] = {}

    def decoded(self, text: str) -> dict[str, Any]:
        found = self._decoded.get(text)
        if found is None:
            found = self._decoded[text] = json.loads(text)
        return found

    def of(self, decision: Decision) -> tuple[dict[str, Any], str]:
        """The answer of a decision and its JSON text (the batch path hands the same decision object to every
        event that gets the same answer; the tuple keeps it alive, so its id is not reused)."""
        found = self._encoded.get(id(decision))
        if found is None or found[0] is not decision:
            answer = decision.as_dict()
            text = json.dumps(answer)
            found = self._encoded[id(decision)] = (decision, self._decoded.setdefault(text, answer), text)
        return found[1], found[2]


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


def _chunk(
    uow: UnitOfWork, fb: Farebox, tenant_id: str, chunk: Sequence[_Received], actor: str, answers: _Answers
) -> list[EventResult]:
    """One transaction: the events received before are answered from what was stored (G4: an exact repeat
    needs no other check), the others validated, placed in their period, decided and recorded with their answers."""
    conn = uow.conn
    now, current = now_and_current(uow, fb.clock, tenant_id)
    ingest_repo.lock_claims(conn, tenant_id)
    earlier = ingest_repo.events_by_key(conn, tenant_id, [r[2] for r in chunk if r[5]])
    results: list[EventResult] = []
    parsed: list[Parsed] = []
    unclean: dict[int, dict[str, Any]] = {}  # valid events that needed the storability walk, by position
    decoded = answers.decoded
    for position, event, key, event_id, digest, clean in chunk:
        first = earlier.get(key)
        if first is not None and _same_payload(first[1], digest, event):
            results.append(EventResult(position, event_id, "duplicate", decoded(first[2])))
            continue
        try:
            parsed.append(_parse(position, event, digest, clean=clean))
        except DomainError as exc:
            echo = event_id if clean else _echo_id(event)
            results.append(EventResult(position, echo, "refused", code=exc.code, message=exc.refusal.message))
            continue
        if not clean:
            unclean[position] = event
    if unclean:  # valid after all (an escaped character that can be stored): looked up now
        earlier.update(ingest_repo.events_by_key(conn, tenant_id, [(e["source"], e["id"]) for e in unclean.values()]))
        for p in parsed:
            stored = earlier.get((p.source, p.id)) if p.index in unclean else None
            if stored is not None and _same_payload(stored[1], p.digest, unclean[p.index]):
                p.digest = stored[1]  # stored with the legacy hash: the same payload
    history = _History(uow, tenant_id, current)
    by_time: dict[datetime | None, late_usage.Placement | late_usage.Refused] = {}  # most events share a few
    claimed: dict[tuple[str, str], Parsed] = {}  # the first placed event of each key
    new: list[Parsed] = []  # ... that was not received before
    placed: dict[int, late_usage.Placement] = {}  # theirs
    refused: dict[int, late_usage.Refused] = {}  # A refused event is not claimed: it may be sent again later.
    for p in parsed:
        where = by_time.get(p.time)
        if where is None:
            at = late_usage.decision_time(p.time, now)
            where = by_time[p.time] = history.place(at) if isinstance(at, datetime) else at
        if isinstance(where, late_usage.Refused):
            refused[p.index] = where
            continue
        key = (p.source, p.id)
        if key not in claimed:
            claimed[key] = p
            if key not in earlier:
                p.at = where.at
                placed[p.index] = where
                new.append(p)
    decided = _decide(uow, tenant_id, new, placed, current, actor)
    rows = []
    of = answers.of
    for p in new:
        p.answer, text = of(decided[p.index])
        rows.append((p.source, p.id, p.digest, p.type, p.time, text))
    ingest_repo.insert_events(conn, tenant_id, rows, now)
    for p in parsed:
        key = (p.source, p.id)
        claimer = claimed.get(key)
        if claimer is not None and claimer.answer is not None:
            if claimer is p:
                results.append(EventResult(p.index, p.id, "applied", decision=p.answer))
            else:
                results.append(_repeated(p, claimer.digest, claimer.answer))
        elif key in earlier:
            results.append(_repeated(p, earlier[key][1], decoded(earlier[key][2])))
        else:
            late = refused.get(p.index)
            assert late is not None, f"event {key} was neither claimed nor found"
            results.append(EventResult(p.index, p.id, "refused", code=late.reason.code, message=late.message))
    return results


def _decide(
    uow: UnitOfWork,
    tenant_id: str,
    new: Sequence[Parsed],
    placed: dict[int, late_usage.Placement],
    current: Subscription | None,
    actor: str,
) -> dict[int, Decision]:
    """The decisions of the newly claimed events: late ones (another period) one by one first, then the others,
    in sets (`ingestion_batch`) when the plan allows it, else one by one with the very same rules; either way in
    event-time order (a stable sort keeps the batch's order among events of one instant)."""
    fast = current is not None and bool(new) and ingestion_batch.eligible(uow, tenant_id, current)
    # members and co-hosts take host seats and need plan features (S2): such a chunk goes one by one, in order
    fast = fast and not any(p.role is not Role.ATTENDEE and p.type == "attendee.joined" for p in new)
    decided: dict[int, Decision] = {}
    batch: list[Parsed] = []
    for p in sorted(new, key=lambda p: placed[p.index].at):
        where = placed[p.index]
        if fast and where.subscription is current:
            batch.append(p)
        else:
            decided[p.index] = _apply(uow, tenant_id, p, where, actor, cause=f"event {p.source}/{p.id}")
    if batch:
        assert current is not None
        decided.update(ingestion_batch.apply(uow, tenant_id, current, batch, actor=actor))
    return decided


def _repeated(p: Parsed, digest: str, answer: dict[str, Any]) -> EventResult:
    """G4: the same (source, id) again: its first answer, or a conflict when the payload differs."""
    if digest != p.digest:
        return EventResult(
            p.index, p.id, "refused", code=reasons.EVENT_CONFLICT.code, message=reasons.EVENT_CONFLICT.message()
        )
    return EventResult(p.index, p.id, "duplicate", decision=answer)


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


# --- validation --------------------------------------------------------------------------------


# A payload's hash (G4) is the SHA-256 of its canonical JSON text: orjson's compact text with sorted keys, for a
# payload of plain JSON values that this text tells apart.  Any other payload is hashed from the legacy text,
# `json.dumps(event, sort_keys=True, default=str)`: one orjson cannot write (a lone surrogate, an integer beyond 64
# bits, a key that is not text, a value that is not a JSON type), and one holding a number that is not finite (NaN,
# Infinity), which orjson writes as null.  A stored hash matches a payload if either text's hash is it
# (`_same_payload`): events stored with the legacy hash still answer duplicate.
_CANONICAL = (
    orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def _legacy_encoder() -> Callable[[Any], str]:
    """`json.dumps(event, sort_keys=True, default=str)`: the C encoder made once (`json.dumps` makes one per call)."""
    if c_make_encoder is None:  # pragma: no cover - CPython without its json accelerator
        encoder = json.JSONEncoder(sort_keys=True, default=str)
        return encoder.encode
    make = c_make_encoder(None, str, encode_basestring_ascii, None, ": ", ", ", True, False, True)
    return lambda event: "".join(make(event, 0))


_legacy_text = _legacy_encoder()


def _legacy_digest(event: dict[str, Any]) -> str:
    return hashlib.sha256(_legacy_text(event).encode()).hexdigest()


def _digest(event: dict[str, Any]) -> tuple[str, bool]:
    """The payload hash, and whether the payload is clean (no string in it that storage cannot keep)."""
    try:
        text = _dumps(event, option=_CANONICAL)
    except TypeError:  # not plain JSON values
        return _legacy_digest_and_check(event)
    # every `null` must be one of the event's top-level None values (most often its `time`): else one may be a NaN
    # or an Infinity, which orjson writes as null too
    nulls = text.count(b"null")
    if nulls and (nulls != 1 or event.get("time", 0) is not None) and nulls != [*event.values()].count(None):
        return _legacy_digest_and_check(event)
    # orjson escapes every NUL (`\\u0000`) and refuses a lone surrogate: a text without that escape holds no string
    # that storage cannot keep, and needs no walk through it
    return _sha256(text).hexdigest(), b"\\u0000" not in text


_dumps, _sha256 = orjson.dumps, hashlib.sha256


def _legacy_digest_and_check(event: dict[str, Any]) -> tuple[str, bool]:
    legacy = _legacy_text(event)  # ASCII: every NUL and lone surrogate escaped (`\\u0000`, `\\ud800`-`\\udfff`)
    clean = "\\u" not in legacy or ("\\u0000" not in legacy and "\\ud" not in legacy)
    return _sha256(legacy.encode()).hexdigest(), clean


def digest_of(event: dict[str, Any]) -> str:
    """The payload hash that tells a resent event (a duplicate) from another one with its id (a conflict)."""
    return _digest(event)[0]


def _same_payload(stored: str, digest: str, event: dict[str, Any]) -> bool:
    """Whether a stored event's hash is this payload's: from the canonical text or from the legacy one."""
    return stored == digest or _legacy_digest(event) == stored


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


def _parse(index: int, event: Any, digest: str, *, clean: bool = False) -> Parsed:
    """A valid event (`digest`: its payload hash; `clean`: no string in it needs the storability walk)."""
    if not isinstance(event, dict):
        raise DomainError(reasons.EVENT_INVALID, detail="an event is an object")
    for key, value in () if clean else event.items():
        bad = _unstorable(key, "event") or _unstorable(value, str(key))
        if bad is not None:
            raise DomainError(
                reasons.EVENT_INVALID,
                detail=f"`{bad}` holds a character that cannot be stored (a NUL or a lone UTF-16 surrogate)",
                details={"field": bad},
            )
    event_id, source, kind = event.get("id"), event.get("source"), event.get("type")
    if not (type(event_id) is str and 0 < len(event_id) <= 255):  # noqa: E721 - the fast check; `_text` says why
        event_id = _text(event, "id")
    if not (type(source) is str and 0 < len(source) <= 255):  # noqa: E721
        source = _text(event, "source")
    if kind not in TYPES:
        kind = _text(event, "type", 128)
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
    digest = digest or digest_of(event)
    if kind == "conversation.message":
        conversation = data.get("conversation_id")
        if not (type(conversation) is str and 0 < len(conversation) <= admission.MAX_ID):  # noqa: E721
            conversation = _text(data, "conversation_id", admission.MAX_ID)
        return Parsed(
            index, source, event_id, kind, time, digest, conversation, sender=_choice(Sender, data.get("from"), "from")
        )
    occurrence, person = data.get("occurrence_id"), data.get("person_id")
    if not (type(occurrence) is str and 0 < len(occurrence) <= admission.MAX_ID):  # noqa: E721
        occurrence = _text(data, "occurrence_id", admission.MAX_ID)
    if not (type(person) is str and 0 < len(person) <= 128):  # noqa: E721
        person = _text(data, "person_id", 128)
    return Parsed(
        index,
        source,
        event_id,
        kind,
        time,
        digest,
        occurrence,
        person_id=person,
        mode=_choice(Mode, data.get("mode", "replay"), "mode"),
        role=_choice(Role, data.get("role", "attendee"), "role"),
    )


_MEMBERS: dict[Any, dict[str, Any]] = {kind: {m.value: m for m in kind} for kind in (Mode, Role, Sender)}


def _choice(kind: Any, value: Any, name: str) -> Any:
    found = _MEMBERS[kind].get(value) if type(value) is str else None  # noqa: E721
    if found is not None:
        return found
    try:
        return kind(value)
    except ValueError:
        raise DomainError(
            reasons.EVENT_INVALID,
            detail=f"`{name}` must be one of {', '.join(v.value for v in kind)}",
            details={"field": name},
        ) from None
