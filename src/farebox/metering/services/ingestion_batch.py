"""A chunk of ingested events decided in memory and written in sets.

`services.ingestion` claims the chunk's events, then hands the ones counted in
the current period of a plan without per-occurrence limits or a trial here
(the others go one by one through `services.admission`, the same rules).
The state they touch is read in a constant number of statements (occurrences
and conversations locked in id order on PostgreSQL), the events are decided
in event-time order with the domain's rules (`metering.domain.admission`,
`metering.domain.conversations`, `metering.domain.pools`, `subscriptions.domain.states`), and the
effects are written in sets.  Each period pool is taken once, last, with the
guarded `UPDATE ... WHERE used + n <= cap` (held as briefly as possible); if another process used the
pool meanwhile, the pools are locked, read again and the chunk re-decided.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from operator import attrgetter
from typing import Any

from farebox.catalog.domain import Meter, MeterKind, Scope
from farebox.events import due, signals
from farebox.events.signals import Signal
from farebox.kernel import reasons
from farebox.metering.db import ingestion as batch_repo
from farebox.metering.db import metering as repo
from farebox.metering.domain.admission import Decision, Mode, Role, admit, deadline_for, past_deadline, refuse
from farebox.metering.domain.admission import Warning as AdmissionWarning
from farebox.metering.domain.admission_core import Leave, Person, Room, Snapshot, decide_leave
from farebox.metering.domain.conversations import Sender, on_message, stored_windows, unbilled, window_columns
from farebox.metering.domain.pools import PoolRule, pool_rule, session_warnings
from farebox.metering.services import admission
from farebox.storage.uow import UnitOfWork
from farebox.subscriptions.domain.states import Status, Subscription, admission_refusal

_AT = attrgetter("at")
UNPLACED = datetime.min.replace(tzinfo=timezone.utc)  # an event not placed in its period yet


@dataclass(slots=True)
class Item:
    """One valid event (`services.ingestion` parses it): its position, what it asks, and, once placed in its
    period, the instant the rules apply at; once decided and recorded, its answer."""

    index: int
    source: str
    id: str
    type: str
    time: datetime | None
    digest: str  # the payload hash (G4)
    subject: str  # the occurrence or conversation id
    person_id: str | None = None
    sender: Sender | None = None
    mode: Mode = Mode.REPLAY
    role: Role = Role.ATTENDEE
    at: datetime = UNPLACED  # the instant the rules apply at, once placed in its period (`late_usage`)
    answer: dict[str, Any] | None = None  # set when recorded

    @property
    def cause(self) -> str:
        """The ledger's cause (G3)."""
        return f"event {self.source}/{self.id}"[:1000]


def eligible(uow: UnitOfWork, tenant_id: str, sub: Subscription | None) -> bool:
    """May this tenant's chunk be decided here?  A live, paid or free plan without per-occurrence limits, no trial,
    and no occurrence that went over a soft cap (those rules are decided one event at a time)."""
    if sub is None or not sub.is_live or sub.status is Status.TRIALING:
        return False
    meters = repo.meters_of(uow.conn, sub.plan_version_id)
    if any(lim.meter in meters and meters[lim.meter].scope is Scope.OCCURRENCE for lim in sub.plan.limits):
        return False
    return repo.settings(uow.conn, tenant_id)["upgrade_required_peak"] is None


@dataclass
class _Pool:
    meter: Meter
    rule: PoolRule
    carried_in: int
    used: int  # the counter's total when read
    exists: bool  # a counter is created with its first unit
    taken: int = 0  # units this chunk counts


@dataclass
class _State:
    occurrences: dict[str, dict[str, Any]]
    people: dict[tuple[str, str], dict[str, Any]]
    conversations: dict[str, dict[str, Any]]
    pools: dict[str, _Pool]
    started: list[str] = field(default_factory=list)
    new_people: set[tuple[str, str]] = field(default_factory=set)
    records: list[tuple[str, str, str | None, datetime, str]] = field(default_factory=list)  # meter, subject, ...
    by_kind: dict[MeterKind, list[_Pool]] = field(default_factory=dict)
    windows: tuple[list[str], timedelta] | None = None  # the session meters and the window length (A1)
    answers: dict[tuple[Any, ...], Decision] = field(default_factory=dict)  # one object per distinct answer
    refusals: dict[datetime, reasons.Reason | None] = field(default_factory=dict)  # G9/G10 at each instant

    def refusal(self, sub: Subscription, at: datetime) -> reasons.Reason | None:
        """`admission_refusal(sub, at)`, once per instant (most events of a chunk share a few)."""
        try:
            return self.refusals[at]
        except KeyError:
            found = self.refusals[at] = admission_refusal(sub, at)
            return found

    def admit(
        self,
        reason: reasons.Reason,
        *,
        counted: bool,
        warnings: tuple[AdmissionWarning, ...] = (),
        deadline: datetime | None = None,
    ) -> Decision:
        key = ("admit", reason.code, counted, warnings, deadline)
        found = self.answers.get(key)
        if found is None:
            found = self.answers[key] = admit(reason, counted=counted, warnings=warnings, deadline=deadline)
        return found

    def refuse(self, reason: reasons.Reason, *, deadline: datetime | None = None) -> Decision:
        key = ("refuse", reason.code, deadline)
        found = self.answers.get(key)
        if found is None:
            found = self.answers[key] = refuse(reason, deadline=deadline)
        return found

    def left(self, deadline: datetime | None) -> Decision:
        key = ("left", deadline)
        found = self.answers.get(key)
        if found is None:
            found = self.answers[key] = Decision(
                False, False, reasons.LEFT.code, reasons.LEFT.message(), deadline=deadline
            )
        return found


def apply(
    uow: UnitOfWork, tenant_id: str, sub: Subscription, items: Sequence[Item], *, actor: str
) -> dict[int, Decision]:
    """Decide these events (given in batch order; decided in event-time order) and write what they do; the decision
    of each, by index."""
    conn = uow.conn
    # in event-time order; `items` come in batch order, which a stable sort keeps among events of one instant
    ordered = sorted(items, key=_AT)
    meters = repo.meters_of(conn, sub.plan_version_id)
    created: dict[str, datetime] = {}
    first_message: dict[str, datetime] = {}
    others: set[str] = set()
    kinds: set[MeterKind] = set()
    for item in ordered:
        kind = item.type
        if kind == "conversation.message":
            if item.subject not in first_message:
                first_message[item.subject] = item.at
        elif kind == "attendee.left":
            others.add(item.subject)
        elif item.subject not in created:
            created[item.subject] = item.at
        if kind == "attendee.joined":
            kinds.add(MeterKind.ATTENDEES)
        elif kind == "conversation.message":
            kinds.add(MeterKind.BILLABLE_SESSIONS)
    lock = False
    while True:
        state = _State(
            batch_repo.lock_occurrences(conn, tenant_id, created, others),
            batch_repo.people_of(
                conn, tenant_id, [(i.subject, i.person_id) for i in ordered if i.person_id is not None]
            ),
            batch_repo.lock_conversations(conn, tenant_id, first_message),
            _pools(uow, tenant_id, sub, meters, kinds, lock=lock),
        )
        decisions = {item.index: _decide(state, sub, meters, item, actor) for item in ordered}
        new = [c for c in state.conversations.values() if c.get("_new")]
        if not batch_repo.create_conversations(conn, tenant_id, new):
            continue  # a live message created one of them since they were read: read again, decide again (A1)
        if _take_pools(uow, tenant_id, sub, state.pools):
            break
        # another process used a pool since it was read: read again, pools locked, decide again
        assert not lock, "a locked pool cannot move"
        batch_repo.drop_conversations(conn, tenant_id, [c["id"] for c in new])
        lock = True
    _write(uow, tenant_id, sub, state, actor, ordered[-1].at if ordered else None)
    return decisions


def _pools(
    uow: UnitOfWork, tenant_id: str, sub: Subscription, meters: dict[str, Meter], kinds: set[MeterKind], *, lock: bool
) -> dict[str, _Pool]:
    conn = uow.conn
    start = sub.period.start
    session_limit = repo.settings(conn, tenant_id)["session_limit"]
    pools: dict[str, _Pool] = {}
    for key in sorted(k for k, m in meters.items() if m.kind in kinds):
        meter, limit = meters[key], sub.plan.limit(key)
        counter: dict[str, Any] = {
            "tenant_id": tenant_id,
            "subscription_id": sub.id,
            "meter": key,
            "period_start_at": start,
        }
        counter_now = batch_repo.pool_counter(conn, **counter, lock=lock)
        used, carried = counter_now or (0, 0)
        customer = session_limit if limit is not None and limit.customer_limit else None
        rule = pool_rule(
            sub.plan,
            limit if meter.scope is Scope.PERIOD else None,
            meter.kind,
            carried_in=carried,
            customer_limit=customer,
        )
        pools[key] = _Pool(meter, rule, carried, used, counter_now is not None)
    return pools


def _take_pools(uow: UnitOfWork, tenant_id: str, sub: Subscription, pools: dict[str, _Pool]) -> bool:
    """Each pool once, in key order: all taken, or none (the ones taken are given back) and False."""
    done: list[_Pool] = []
    for pool in pools.values():
        if not pool.taken:
            continue
        counter: dict[str, Any] = {
            "tenant_id": tenant_id,
            "subscription_id": sub.id,
            "meter": pool.meter.key,
            "period_start_at": sub.period.start,
        }
        if not pool.exists:
            repo.ensure_counter(
                uow.conn, **counter, period_end_at=sub.period.end
            )  # with 0 carried in, as a first unit creates it
        after = repo.consume(uow.conn, **counter, cap=pool.rule.cap, units=pool.taken, carried_in=pool.carried_in)
        if after is None:
            for undo in done:
                repo.consume(uow.conn, **{**counter, "meter": undo.meter.key}, cap=None, units=-undo.taken)
            return False
        pool.used = after - pool.taken
        done.append(pool)
    return True


# --- deciding, in memory ------------------------------------------------------------------------


def _decide(state: _State, sub: Subscription, meters: dict[str, Meter], item: Item, actor: str) -> Decision:
    kind = item.type
    if kind == "attendee.joined":
        return _join(state, sub, item)
    if kind == "conversation.message":
        return _message(state, sub, meters, item)
    assert item.person_id is not None
    if kind == "attendee.registered":
        occ = state.occurrences[item.subject]
        person = _person(state, item.subject, item.person_id, item.at)
        if person["registered_at"] is None:
            person["registered_at"] = person["updated_at"] = item.at
        return state.admit(reasons.REGISTERED, counted=False, deadline=occ["deadline_at"])
    return _leave(state, item)


def _person(state: _State, occurrence_id: str, person_id: str, at: datetime) -> dict[str, Any]:
    key = (occurrence_id, person_id)
    person = state.people.get(key)
    if person is None:
        person = state.people[key] = {
            "occurrence_id": occurrence_id,
            "person_id": person_id,
            "registered_at": None,
            "counted_at": None,
            "first_mode": None,
            "present": False,
            "host": False,
            "waiting_ticket": None,
            "updated_at": at,
        }
        state.new_people.add(key)
    person["_changed"] = True
    return person


def _leave(state: _State, item: Item) -> Decision:
    """`domain.admission_core.decide_leave`'s effects on the chunk's rows (a host's seat, the room, a ticket)."""
    assert item.person_id is not None
    occ = state.occurrences.get(item.subject)
    person = state.people.get((item.subject, item.person_id))
    if occ is not None and person is not None:
        known = Person(exists=True, present=bool(person["present"]), host=bool(person["host"]),
                       ticket=person["waiting_ticket"])
        room = Room(id=item.subject, deadline=occ["deadline_at"], present=occ["present"], hosts=occ["hosts"])
        snapshot = Snapshot(now=item.at, plan=None, refusal=None, limits=(), room=room, people={item.person_id: known})
        _, effects = decide_leave(snapshot, Leave(item.person_id))
        if effects.person:
            person.update(effects.person, _changed=True)
        if effects.room:
            occ.update(effects.room, _changed=True)
    return state.left(occ["deadline_at"] if occ else None)


def _join(state: _State, sub: Subscription, item: Item) -> Decision:
    """`services.admission.join_in` for a plan without per-occurrence limits: S6, G5, L2, G9/G10, L3; `started`
    when this very event opened the occurrence."""
    opened_before = len(state.started)
    decision = _join_decision(state, sub, item)
    return replace(decision, started=True) if len(state.started) > opened_before else decision


def _join_decision(state: _State, sub: Subscription, item: Item) -> Decision:
    person_id = item.person_id
    assert person_id is not None
    occ, at = state.occurrences[item.subject], item.at
    if occ["started_at"] is None:
        refusal = state.refusal(sub, at)
        if refusal is not None:
            return state.refuse(refusal)
        occ.update(
            started_at=at, deadline_at=deadline_for(at, sub.plan.event_duration), subscription_id=sub.id, _changed=True
        )
        state.started.append(item.subject)
    deadline = occ["deadline_at"]
    ended = occ["ended_at"] is not None and at >= occ["ended_at"]  # a join logged before the end counts (D3)
    if item.mode.is_live and (ended or past_deadline(deadline, at)):
        return state.refuse(reasons.DURATION_EXCEEDED, deadline=deadline)
    if not item.role.is_billable:
        return state.admit(reasons.NOT_BILLABLE_MEMBER, counted=False, deadline=deadline)
    known = state.people.get((item.subject, person_id))
    if known is not None and known["counted_at"] is not None:
        _enter(state, occ, item, counted=False)
        return state.admit(reasons.ALREADY_COUNTED, counted=False, deadline=deadline)
    refusal = state.refusal(sub, at)
    if refusal is not None:
        return state.refuse(refusal, deadline=deadline)
    counted = _count(state, sub, MeterKind.ATTENDEES, item, f"occurrence:{item.subject}")
    if isinstance(counted, reasons.Reason):
        return state.refuse(counted, deadline=deadline)
    _enter(state, occ, item, counted=True)
    return state.admit(reasons.ADMITTED, counted=True, warnings=counted, deadline=deadline)


def _enter(state: _State, occ: dict[str, Any], item: Item, *, counted: bool) -> None:
    assert item.person_id is not None
    at = item.at
    person = _person(state, item.subject, item.person_id, at)
    if person["host"] and person["present"]:  # a host who joins as an attendee gives up the seat (S2, decide_join)
        person["host"] = person["present"] = False
        occ["hosts"] = max(0, occ["hosts"] - 1)
    present = occ["present"]
    if not person["present"]:
        present += 1
        person["present"] = True
    person["waiting_ticket"] = None
    person["updated_at"] = at
    if counted:
        person["counted_at"] = at
        person["first_mode"] = item.mode.value
        occ["counted"] += 1
    occ["present"] = present
    if present > occ["peak"]:
        occ["peak"] = present
    occ["_changed"] = True


def _count(
    state: _State, sub: Subscription, kind: MeterKind, item: Item, subject: str
) -> tuple[AdmissionWarning, ...] | reasons.Reason:
    """One unit on each pool of this kind, or the refusal of the first that is used up (none counted then)."""
    pools = state.by_kind.get(kind)
    if pools is None:
        pools = state.by_kind[kind] = [p for p in state.pools.values() if p.meter.kind is kind]
    for pool in pools:
        if pool.rule.cap is not None and pool.used + pool.taken + 1 > pool.rule.cap:
            return pool.rule.reason or reasons.CREDITS_EXHAUSTED
    warnings: tuple[AdmissionWarning, ...] = ()
    cause = item.cause
    for pool in pools:
        pool.taken += 1
        state.records.append((pool.meter.key, subject, item.person_id, item.at, cause))
        if kind is MeterKind.BILLABLE_SESSIONS:
            warnings += session_warnings(pool.used + pool.taken, pool.rule, kind)
    return warnings


def _message(state: _State, sub: Subscription, meters: dict[str, Meter], item: Item) -> Decision:
    """`services.admission.message_in`: A1 windows, A2 answered only, A6 limits."""
    assert item.sender is not None
    at = item.at
    if state.windows is None:  # the plan's, once per chunk
        metered = sorted(k for k, m in meters.items() if m.kind is MeterKind.BILLABLE_SESSIONS)
        length = next((meters[k].window for k in metered if meters[k].window), None) or admission.DEFAULT_WINDOW
        state.windows = (metered, length)
    session_meters, length = state.windows
    conv = state.conversations[item.subject]
    window, earlier = stored_windows(conv, length)
    effect = on_message(
        window, at, item.sender, length=length, answered_only=sub.plan.answered_only, earlier=earlier,
        last=conv["last_message_at"],
    )
    unmetered = effect.bills and not session_meters
    if unmetered:
        effect = unbilled(effect)
    warnings: tuple[AdmissionWarning, ...] = ()
    if effect.opens or effect.bills:
        refusal = state.refusal(sub, at)
        if refusal is not None:
            return state.refuse(refusal)
    if effect.bills:
        counted = _count(state, sub, MeterKind.BILLABLE_SESSIONS, item, f"conversation:{item.subject}")
        if isinstance(counted, reasons.Reason):
            return state.refuse(counted)
        warnings = counted
    conv.update(
        **window_columns(effect),
        windows=conv["windows"] + int(effect.opens),
        billable=conv["billable"] + int(effect.bills),
        last_message_at=max(at, conv["last_message_at"]),
        _changed=True,
    )
    if effect.bills:
        return state.admit(reasons.ADMITTED, counted=True, warnings=warnings)
    if unmetered:
        return state.admit(reasons.ADMITTED, counted=False)
    return state.admit(reasons.NOT_BILLABLE_OUTBOUND if effect.opens else reasons.WINDOW_OPEN, counted=False)


# --- writing, in sets ---------------------------------------------------------------------------


def _write(
    uow: UnitOfWork, tenant_id: str, sub: Subscription, state: _State, actor: str, last_at: datetime | None
) -> None:
    conn = uow.conn
    batch_repo.write_occurrences(conn, tenant_id, [o for o in state.occurrences.values() if o.get("_changed")])
    changed = [p for k, p in state.people.items() if p.get("_changed")]
    batch_repo.write_people(
        conn,
        tenant_id,
        [p for p in changed if (p["occurrence_id"], p["person_id"]) in state.new_people],
        [p for p in changed if (p["occurrence_id"], p["person_id"]) not in state.new_people],
    )
    batch_repo.write_conversations(
        conn, tenant_id, [c for c in state.conversations.values() if c.get("_changed") and not c.get("_new")]
    )
    batch_repo.record_units(conn, tenant_id, sub.id, sub.period.start, state.records)
    _schedule_ends(uow, tenant_id, sub, [state.occurrences[o] for o in state.started])
    for pool in state.pools.values():
        if pool.taken and pool.meter.scope is Scope.PERIOD and last_at is not None:
            data = {
                "meter": pool.meter.key,
                "before": pool.used,
                "after": pool.used + pool.taken,
                "included": pool.rule.included,
                "limit": pool.rule.warn_at,
                "trial": False,
                "period_start": sub.period.start,
                "period_end": sub.period.end,
            }
            signals.publish(uow, Signal("usage.recorded", tenant_id, last_at, actor, sub.id, data))


def _schedule_ends(uow: UnitOfWork, tenant_id: str, sub: Subscription, started: Sequence[dict[str, Any]]) -> None:
    """S6, as `services.admission.start_in` schedules it: the warning before the deadline, then the end."""
    warnings: list[tuple[str, str, datetime, datetime, dict[str, Any]]] = []
    ends: list[tuple[str, str, datetime, datetime, dict[str, Any]]] = []
    for occ in started:
        deadline, at = occ["deadline_at"], occ["started_at"]
        if deadline is None:
            continue
        warn_at = deadline - sub.plan.duration_warning
        if warn_at > at:
            payload = {
                "deadline": deadline.isoformat(),
                "minutes_left": int(sub.plan.duration_warning.total_seconds() // 60),
            }
            warnings.append((tenant_id, occ["id"], warn_at, at, payload))
        ends.append((tenant_id, occ["id"], deadline, at, {}))
    if warnings:
        due.schedule_all(uow, kind=admission.ENDING_SOON, items=warnings)
    if ends:
        due.schedule_all(uow, kind=admission.OCCURRENCE_END, items=ends)
