"""Admission and ingestion steps: the hot path's questions, asked as the platform asks them.

`join` and `message` take `count: N` to ask N times for N different people
(`person: p` with `count: 3` is p1, p2, p3; `first: 4` starts at p4) or N
conversations; the answer is then the last decision plus tallies.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from farebox.metering.domain.admission import Decision
from farebox.metering.services import admission, ingestion
from farebox.scenarios.context import Answer, Context, instant, iso, step
from farebox.scenarios.document import Step


def _decision(d: Decision) -> Answer:
    return d.as_dict()


def _repeated(ctx: Context, s: Step, key: str, ask: Callable[[str], Decision]) -> Answer:
    base = str(ctx.required(s, key))
    count = s.args.get("count")
    if count is None:
        return _decision(ask(base))
    if not isinstance(count, int) or count < 1:
        raise ctx.error(s, "`count` is a whole number > 0")
    first = int(s.args.get("first", 1))
    decisions = [ask(f"{base}{i}") for i in range(first, first + count)]
    warnings: list[str] = []
    for d in decisions:
        warnings += [w for w in d.warnings if w not in warnings]
    return {
        **_decision(decisions[-1]),
        "admitted_count": sum(d.admitted for d in decisions),
        "counted_count": sum(d.counted for d in decisions),
        "reasons": dict(Counter(d.reason for d in decisions)),
        "warnings_seen": warnings,
    }


def _tenant_and_occurrence(ctx: Context, s: Step) -> tuple[str, str, Any]:
    tenant_id = ctx.tenant(s)
    return tenant_id, str(ctx.required(s, "occurrence")), ctx.actor(s, tenant_id)


@step("start")
def _start(ctx: Context, s: Step) -> Answer:
    """`- start: {tenant: acme, occurrence: o1}`: open the room; answers `deadline` (S6)."""
    tenant_id, occurrence, actor = _tenant_and_occurrence(ctx, s)
    return _decision(admission.start_occurrence(ctx.fb, actor, tenant_id, occurrence))


@step("end")
def _end(ctx: Context, s: Step) -> Answer:
    """`- end: {tenant: acme, occurrence: o1}`: the host ends the occurrence."""
    tenant_id, occurrence, actor = _tenant_and_occurrence(ctx, s)
    return _decision(admission.end_occurrence(ctx.fb, actor, tenant_id, occurrence))


@step("join")
def _join(ctx: Context, s: Step) -> Answer:
    """`- join: {tenant: acme, occurrence: o1, person: p1, mode: live, role: attendee}` (`count: N`)."""
    tenant_id, occurrence, actor = _tenant_and_occurrence(ctx, s)
    mode, role = str(s.args.get("mode", "live")), str(s.args.get("role", "attendee"))
    return _repeated(
        ctx,
        s,
        "person",
        lambda person: admission.join(ctx.fb, actor, tenant_id, occurrence, person, mode=mode, role=role),
    )


@step("leave")
def _leave(ctx: Context, s: Step) -> Answer:
    """`- leave: {tenant: acme, occurrence: o1, person: p1}` (`count: N`)."""
    tenant_id, occurrence, actor = _tenant_and_occurrence(ctx, s)
    return _repeated(ctx, s, "person", lambda person: admission.leave(ctx.fb, actor, tenant_id, occurrence, person))


@step("register")
def _register(ctx: Context, s: Step) -> Answer:
    """`- register: {tenant: acme, occurrence: o1, person: p2}` (`count: N`): never counted (G5)."""
    tenant_id, occurrence, actor = _tenant_and_occurrence(ctx, s)
    return _repeated(ctx, s, "person", lambda person: admission.register(ctx.fb, actor, tenant_id, occurrence, person))


@step("message")
def _message(ctx: Context, s: Step) -> Answer:
    """`- message: {tenant: acme, conversation: c1, from: customer}` (or `agent`; `count: N` conversations)."""
    tenant_id = ctx.tenant(s)
    actor, sender = ctx.actor(s, tenant_id), str(s.args.get("from", "customer"))
    return _repeated(
        ctx,
        s,
        "conversation",
        lambda conversation: admission.message(ctx.fb, actor, tenant_id, conversation, sender=sender),
    )


@step("ingest")
def _ingest(ctx: Context, s: Step) -> Answer:
    """`- ingest: {tenant: acme, events: [{id: e1, source: logs, type: attendee.joined, data: {...}}]}` (G4).

    An event's `time` may be a YAML date-time; without one it is the clock's now."""
    tenant_id = ctx.tenant(s)
    events = ctx.required(s, "events")
    if not isinstance(events, list):
        raise ctx.error(s, "`events` is a list of usage events")
    batch = [{**e, "time": iso(instant(e["time"]))} if isinstance(e, dict) and "time" in e else e for e in events]
    report = ingestion.ingest(ctx.fb, ctx.actor(s, tenant_id), tenant_id, batch)
    return {
        "ok": True,
        "received": report.received,
        "applied": report.applied,
        "duplicates": report.duplicates,
        "refused": report.refused,
        "counted": report.counted,
        "results": [
            {
                "status": r.status,
                **({"reason": r.decision["reason"], "counted": r.decision["counted"]} if r.decision else {}),
                **({"code": r.code} if r.code else {}),
            }
            for r in report.results
        ],
    }
