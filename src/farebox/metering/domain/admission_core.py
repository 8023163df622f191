"""The join decision as a pure function: a snapshot of the state that matters and a request in,
the decision and the effects to write out (S2, S4-S6, L1, L2, L7, G5, G9, G10).

The service reads a `Snapshot` (the plan and what the subscription allows, the occurrence's
room, the people concerned, the period pools), asks `decide_join` or `decide_leave`, and writes
the `Effects`.  `decide_all` applies a list of requests in order to one snapshot, each seeing
the effects of the ones before (the batch form).

A pool whose `used` is not known (`None`) is decided by the database's guarded
`UPDATE … WHERE used + n <= cap`: the effects then name the units to take, and the service
re-decides with `exhausted` when the guard fails (`with_pool_exhausted`).  A pool whose `used`
is known is decided here, the guard staying a safety net.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from farebox.catalog.domain import Limit, Meter, MeterKind, Plan, Policy
from farebox.kernel import reasons
from farebox.metering.domain.admission import (
    Decision,
    Mode,
    Role,
    Warning,
    admit,
    answer,
    check_cap,
    host_refusal,
    may_take_seat,
    past_deadline,
    refuse,
    ticket_live,
)
from farebox.metering.domain.pools import PoolRule, session_warnings


@dataclass(frozen=True, slots=True)
class Room:
    """An occurrence's row, as far as a join needs it."""

    id: str
    deadline: datetime | None = None
    ended_at: datetime | None = None
    counted: int = 0  # unique attendees counted (S4, L2)
    present: int = 0  # attendees in the room now (S5 concurrent)
    peak: int = 0
    queue_tail: int = 0  # waiting-room tickets handed out
    cap_exceeded: bool = False  # the host was told once (S5)
    hosts: int = 0  # members hosting now (S2 seats)
    live_tickets: tuple[int, ...] = ()  # waiting-room tickets re-presented in time, sorted


@dataclass(frozen=True, slots=True)
class Person:
    """One person's row in an occurrence; `NEW` when there is none."""

    exists: bool = False
    counted: bool = False
    present: bool = False
    host: bool = False
    ticket: int | None = None
    presented_at: datetime | None = None  # when the ticket was last re-presented


NEW = Person()


@dataclass(frozen=True, slots=True)
class Pool:
    """A period pool the join takes a unit from (L3): its rule and, when known, its use."""

    meter: str
    kind: MeterKind
    rule: PoolRule
    used: int | None = None  # None: the database's guard decides
    exhausted: bool = False  # a guard refused it: decide as if it were at its cap


@dataclass(frozen=True, slots=True)
class Snapshot:
    now: datetime
    plan: Plan | None
    refusal: reasons.Reason | None  # why the subscription admits nothing new (G9, G10), or None
    limits: tuple[tuple[Meter, Limit], ...]  # the plan's per-occurrence caps (S5)
    room: Room
    people: Mapping[str, Person] = field(default_factory=dict)
    pools: tuple[Pool, ...] = ()


@dataclass(frozen=True, slots=True)
class Join:
    person_id: str
    mode: Mode = Mode.LIVE
    role: Role = Role.ATTENDEE


@dataclass(frozen=True, slots=True)
class Leave:
    person_id: str


@dataclass(frozen=True, slots=True)
class Effects:
    """What to write for one decision; nothing for a refusal that queues nobody."""

    person: dict[str, Any] = field(default_factory=dict)  # values of the person's row (inserted if new)
    room: dict[str, Any] = field(default_factory=dict)  # values of the occurrence's row
    take: tuple[str, ...] = ()  # pool meters to take one unit from, in this order (guarded)
    over: tuple[tuple[Meter, Limit, int], ...] = ()  # caps passed by this join: (meter, limit, count)
    counted_person: str | None = None  # the ledger row's person (G3)

    @property
    def writes(self) -> bool:
        return bool(self.person or self.room or self.take)


NOTHING = Effects()


def _pool_refusal(pools: Iterable[Pool]) -> reasons.Reason | None:
    for pool in pools:
        cap = pool.rule.cap
        if cap is not None and (pool.exhausted or (pool.used is not None and pool.used + 1 > cap)):
            return pool.rule.reason
    return None


def decide_join(s: Snapshot, request: Join) -> tuple[Decision, Effects]:
    """May this person enter this started occurrence, and what does it count?"""
    room, now, deadline = s.room, s.now, s.room.deadline
    person = s.people.get(request.person_id, NEW)
    # a live join logged before the occurrence ended (a late event) is decided as things stood then (D3)
    ended = room.ended_at is not None and now >= room.ended_at
    if request.mode.is_live and (ended or past_deadline(deadline, now)):
        return refuse(reasons.DURATION_EXCEEDED, deadline=deadline), NOTHING
    if not request.role.is_billable:
        return _host(s, request, person)
    returning = person.counted
    if not returning and s.refusal is not None:
        return refuse(s.refusal, deadline=deadline), NOTHING
    over: list[tuple[Meter, Limit, int]] = []
    person_values: dict[str, Any] = {}
    room_values: dict[str, Any] = {}
    in_room = person.present and not person.host  # a host who now joins as an attendee gives up the seat
    if person.host and person.present:
        person_values["host"] = False
        room_values["hosts"] = max(0, room.hosts - 1)
    if not in_room:
        for meter, limit in s.limits:
            if meter.kind is MeterKind.CONCURRENT_ATTENDEES or limit.policy is Policy.HARD_WITH_WAITING_ROOM:
                seat = _seat(s, person, limit)
                if isinstance(seat, tuple):
                    return seat
                if seat:
                    over.append((meter, limit, room.present + 1))
    if not returning:
        for meter, limit in s.limits:
            if meter.kind is MeterKind.ATTENDEES and limit.policy is not Policy.HARD_WITH_WAITING_ROOM:
                check = check_cap(room.counted, limit.included, limit.policy)
                if not check.allowed:
                    return refuse(reasons.ATTENDEE_CAP_REACHED, deadline=deadline, limit=limit.included), NOTHING
                if check.over:
                    over.append((meter, limit, room.counted + 1))
        refused = _pool_refusal(s.pools)
        if refused is not None:
            return refuse(refused, deadline=deadline), NOTHING
    entering = not in_room
    person_values.update(present=True, waiting_ticket=None, updated_at=now)
    if not returning:
        person_values.update(counted_at=now, first_mode=request.mode.value)
    present = room.present + (1 if entering else 0)
    room_values.update(counted=room.counted + (0 if returning else 1), present=present, peak=max(room.peak, present))
    if returning:
        effects = Effects(person_values, room_values)
        return admit(reasons.ALREADY_COUNTED, counted=False, deadline=deadline), effects
    take = tuple(p.meter for p in s.pools)
    warnings = tuple(_over_warning(limit) for _, limit, _ in over if limit.policy is Policy.SOFT)
    effects = Effects(person_values, room_values, take, tuple(over), request.person_id)
    return admit(reasons.ADMITTED, counted=True, warnings=warnings, deadline=deadline), effects


def _over_warning(limit: Limit) -> Warning:
    return Warning.of(reasons.OVER_ATTENDEE_LIMIT, limit=limit.included)


def _host(s: Snapshot, request: Join, person: Person) -> tuple[Decision, Effects]:
    """Members and co-hosts: never counted (G5); a co-host needs the feature, a hosting member a seat (S2)."""
    deadline = s.room.deadline
    if s.plan is not None:
        refused = host_refusal(s.plan, request.role, hosts=s.room.hosts, already_hosting=person.present)
        if refused is not None:
            return refuse(refused[0], deadline=deadline, **refused[1]), NOTHING
    effects = NOTHING
    if request.role is Role.MEMBER and not person.present:
        effects = Effects({"present": True, "host": True, "updated_at": s.now}, {"hosts": s.room.hosts + 1})
    return admit(reasons.NOT_BILLABLE_MEMBER, counted=False, deadline=deadline), effects


def _seat(s: Snapshot, person: Person, limit: Limit) -> tuple[Decision, Effects] | bool:
    """A seat in the room under a concurrent cap: True if over a soft cap, False if fine, or a refusal.
    In a waiting room only live tickets hold a place; re-presenting a live ticket renews it."""
    room, now = s.room, s.now
    if limit.policy is Policy.HARD_WITH_WAITING_ROOM and limit.included is not None:
        ticket = person.ticket if ticket_live(person.presented_at, now) else None
        ahead = sum(1 for t in room.live_tickets if ticket is None or t < ticket)
        if may_take_seat(ahead, room.present, limit.included):
            return False
        room_values: dict[str, Any] = {}
        if ticket is None:
            ticket = room.queue_tail + 1
            room_values["queue_tail"] = ticket
        effects = Effects({"waiting_ticket": ticket, "updated_at": now}, room_values)
        return refuse(reasons.WAITING_ROOM, position=ahead + 1, deadline=room.deadline), effects
    check = check_cap(room.present, limit.included, limit.policy)
    if not check.allowed:
        return refuse(reasons.ATTENDEE_CAP_REACHED, limit=limit.included, deadline=room.deadline), NOTHING
    return check.over


def decide_leave(s: Snapshot, request: Leave) -> tuple[Decision, Effects]:
    """A person leaves the room, their host seat or the waiting room (S2, S5)."""
    person, room = s.people.get(request.person_id, NEW), s.room
    effects = NOTHING
    if person.present and person.host:
        effects = Effects({"present": False, "host": False, "updated_at": s.now}, {"hosts": max(0, room.hosts - 1)})
    elif person.present:
        effects = Effects({"present": False, "updated_at": s.now}, {"present": max(0, room.present - 1)})
    elif person.ticket is not None:
        effects = Effects({"waiting_ticket": None, "updated_at": s.now})
    return answer(reasons.LEFT, deadline=room.deadline), effects


def settle(decision: Decision, pools: Iterable[Pool], afters: Mapping[str, int]) -> Decision:
    """The pool warnings of a counted join, once the units are taken: A6 at 80 % and 100 % (G15 codes)."""
    extra = tuple(
        w for pool in pools if pool.meter in afters for w in session_warnings(afters[pool.meter], pool.rule, pool.kind)
    )
    if not extra:
        return decision
    return replace(
        decision,
        warnings=decision.warnings + tuple(w.text for w in extra),
        warning_codes=decision.warning_codes + tuple(w.code for w in extra),
    )


def with_pool_exhausted(s: Snapshot, meter: str) -> Snapshot:
    """The snapshot as it is once a guard found this pool at its cap: decide again with it."""
    return replace(s, pools=tuple(replace(p, exhausted=True) if p.meter == meter else p for p in s.pools))


def apply(s: Snapshot, person_id: str, effects: Effects, afters: Mapping[str, int] | None = None) -> Snapshot:
    """The snapshot after these effects were written (the batch form's step)."""
    if not effects.writes:
        return s
    room, person = s.room, s.people.get(person_id, NEW)
    rv, pv = effects.room, effects.person
    tickets, ticket, presented_at = set(room.live_tickets), person.ticket, person.presented_at
    if "waiting_ticket" in pv:
        tickets.discard(person.ticket)
        ticket = pv["waiting_ticket"]
        if ticket is not None:
            tickets.add(ticket)
            presented_at = pv["updated_at"]
    room = replace(
        room,
        counted=rv.get("counted", room.counted),
        present=rv.get("present", room.present),
        peak=rv.get("peak", room.peak),
        queue_tail=rv.get("queue_tail", room.queue_tail),
        hosts=rv.get("hosts", room.hosts),
        cap_exceeded=room.cap_exceeded or bool(effects.over),
        live_tickets=tuple(sorted(tickets)),
    )
    person = Person(
        exists=True,
        counted=person.counted or "counted_at" in pv,
        present=pv.get("present", person.present),
        host=pv.get("host", person.host),
        ticket=ticket,
        presented_at=presented_at,
    )
    taken = set(effects.take)
    pools = tuple(
        replace(p, used=(afters or {}).get(p.meter, p.used + 1)) if p.meter in taken and p.used is not None else p
        for p in s.pools
    )
    return replace(s, room=room, people={**s.people, person_id: person}, pools=pools)


def decide_all(s: Snapshot, requests: Iterable[Join | Leave]) -> tuple[list[tuple[Decision, Effects]], Snapshot]:
    """The batch form: each request decided in order on the snapshot the ones before left
    (pools whose `used` is known are decided here; see the module's docstring)."""
    out: list[tuple[Decision, Effects]] = []
    for request in requests:
        if isinstance(request, Leave):
            decision, effects = decide_leave(s, request)
        else:
            decision, effects = decide_join(s, request)
        afters = {p.meter: p.used + 1 for p in s.pools if p.meter in effects.take and p.used is not None}
        out.append((settle(decision, s.pools, afters), effects))
        s = apply(s, request.person_id, effects, afters)
    return out, s
