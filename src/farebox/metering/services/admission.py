"""Admission: may this attendee join, may this agent open a session, how long may this event last.

Each public function opens one unit of work: the decision and the count are
one transaction (G4).  The `*_in(uow, ...)` forms run inside a caller's unit
(batch ingestion applies events with the very same rules).  A refusal of
entry is an answer (`Decision(admitted=False, reason=...)`), not an error.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from farebox.bootstrap import Farebox
from farebox.catalog.domain import Limit, Meter, MeterKind, Policy, Scope
from farebox.clocks.service import now_and_current, now_for, tenant_time
from farebox.events import due, signals
from farebox.events.signals import Signal
from farebox.kernel import reasons
from farebox.kernel.access import Principal, require_tenant_access
from farebox.kernel.reasons import DomainError
from farebox.metering.db import metering as repo
from farebox.metering.domain.admission import (
    WAITING_TICKET_TTL,
    Decision,
    Mode,
    Role,
    Warning,
    admit,
    deadline_for,
    host_refusal,
    past_deadline,
    refuse,
    upgrade_required,
)
from farebox.metering.domain.admission_core import (
    NEW,
    Effects,
    Join,
    Leave,
    Person,
    Pool,
    Room,
    Snapshot,
    decide_join,
    decide_leave,
    with_pool_exhausted,
)
from farebox.metering.domain.conversations import Sender, on_message, stored_windows, unbilled, window_columns
from farebox.metering.domain.pools import pool_rule, session_warnings
from farebox.storage.uow import UnitOfWork
from farebox.subscriptions import db as subs_repo
from farebox.subscriptions.domain.states import Status, Subscription, admission_refusal

ENDING_SOON = "occurrence_ending_soon"
OCCURRENCE_END = "occurrence_end"
MAX_ID = 64
DEFAULT_WINDOW = timedelta(hours=24)  # A1
# `sub=UNREAD`: the `*_in` functions read the current subscription themselves.  The
# public functions pass the one read in the decision's first statement (`_run`);
# nothing between that read and its use writes a subscription.
UNREAD: Any = object()


# --- public service functions ------------------------------------------------------


def start_occurrence(
    fb: Farebox, actor: Principal, tenant_id: str, occurrence_id: str, *, cause: str = "api"
) -> Decision:
    """Open an occurrence's room: refused when the subscription cannot start one (G9, G10, S5); else its deadline
    (S6)."""
    return _run(
        fb,
        actor,
        tenant_id,
        lambda uow, now, sub: start_in(uow, tenant_id, _id(occurrence_id), now=now, actor=actor.label(), sub=sub),
        subscription=True,
    )


def join(
    fb: Farebox,
    actor: Principal,
    tenant_id: str,
    occurrence_id: str,
    person_id: str,
    *,
    mode: str = "live",
    role: str = "attendee",
) -> Decision:
    """A person enters an occurrence: counted once per occurrence (L2), members never (G5), within the plan's caps and
    pool."""
    m, r = _enum(Mode, mode, "mode"), _enum(Role, role, "role")
    require_tenant_access(actor, tenant_id)
    with fb.uow() as uow:
        # The decision's first statement: the tenant's time, its subscription, the occurrence (locked) and
        # on SQLite the person too (`repos.metering.clock_current_occurrence_and_person`).
        exists, test_now, sub, occ, person = repo.clock_current_occurrence_and_person(
            uow.conn, tenant_id, occurrence_id, person_id
        )
        now = tenant_time(fb.clock, exists, test_now)
        decision = join_in(
            uow, tenant_id, _id(occurrence_id), _person(person_id), mode=m, role=r, now=now, actor=actor.label(),
            sub=sub, read=(occ, person),
        )
        uow.commit()
    return decision


def leave(fb: Farebox, actor: Principal, tenant_id: str, occurrence_id: str, person_id: str) -> Decision:
    """A person leaves the room (or the waiting room): frees a seat under a concurrent cap (S5)."""
    return _run(
        fb,
        actor,
        tenant_id,
        lambda uow, now, _sub: leave_in(uow, tenant_id, _id(occurrence_id), _person(person_id), now=now),
    )


def register(fb: Farebox, actor: Principal, tenant_id: str, occurrence_id: str, person_id: str) -> Decision:
    """A registration: always accepted, never counted (G5, L7)."""
    return _run(
        fb,
        actor,
        tenant_id,
        lambda uow, now, _sub: register_in(uow, tenant_id, _id(occurrence_id), _person(person_id), now=now),
    )


def end_occurrence(fb: Farebox, actor: Principal, tenant_id: str, occurrence_id: str) -> Decision:
    """The host ends the occurrence: everyone leaves; later live joins get `duration_exceeded`."""
    return _run(fb, actor, tenant_id, lambda uow, now, _sub: end_in(uow, tenant_id, _id(occurrence_id), now=now))


def message(fb: Farebox, actor: Principal, tenant_id: str, conversation_id: str, *, sender: str) -> Decision:
    """A conversation message: opens a 24 h billable window when none is open (A1), billed by the plan's rule (A2)."""
    s = _enum(Sender, sender, "from")
    return _run(
        fb,
        actor,
        tenant_id,
        lambda uow, now, sub: message_in(
            uow, tenant_id, _id(conversation_id), s, now=now, actor=actor.label(), sub=sub
        ),
        subscription=True,
    )


def _run(fb: Farebox, actor: Principal, tenant_id: str, fn: Any, *, subscription: bool = False) -> Decision:
    """One decision, one transaction.  With `subscription`, the tenant's time and
    its current subscription are read together, in the decision's first statement."""
    require_tenant_access(actor, tenant_id)
    with fb.uow() as uow:
        if subscription:
            now, sub = now_and_current(uow, fb.clock, tenant_id)
        else:
            now, sub = now_for(uow, fb.clock, tenant_id), UNREAD
        decision = fn(uow, now, sub)
        uow.commit()
    return decision


def _current(uow: UnitOfWork, tenant_id: str, sub: Any) -> Subscription | None:
    """The subscription the caller read in this decision's transaction, or else read it now."""
    return subs_repo.current(uow.conn, tenant_id) if sub is UNREAD else sub


def _enum(kind: Any, value: Any, field: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(v.value for v in kind)
        raise DomainError(
            reasons.VALIDATION_ERROR, detail=f"{field} must be one of {allowed}", details={"field": field}
        ) from None


def _id(value: str) -> str:
    if not value or len(value) > MAX_ID:
        raise DomainError(reasons.VALIDATION_ERROR, detail=f"ids are 1 to {MAX_ID} characters", details={"field": "id"})
    return value


def _person(value: str) -> str:
    if not value or len(value) > 128:
        raise DomainError(
            reasons.VALIDATION_ERROR, detail="person_id is 1 to 128 characters", details={"field": "person_id"}
        )
    return value


# --- occurrences -------------------------------------------------------------------


def _meters(uow: UnitOfWork, sub: Subscription | None) -> dict[str, Meter]:
    return repo.meters_of(uow.conn, sub.plan_version_id) if sub is not None else {}


def _occurrence_limits(sub: Subscription | None, meters: dict[str, Meter]) -> list[tuple[Meter, Limit]]:
    if sub is None:
        return []
    return [
        (meters[lim.meter], lim)
        for lim in sub.plan.limits
        if lim.meter in meters and meters[lim.meter].scope is Scope.OCCURRENCE
    ]


def _already_started(occ: dict[str, Any], now: datetime) -> Decision:
    if occ["ended_at"] is not None or past_deadline(occ["deadline_at"], now):
        return refuse(reasons.DURATION_EXCEEDED, deadline=occ["deadline_at"])
    return admit(reasons.STARTED, counted=False, deadline=occ["deadline_at"])


def start_in(
    uow: UnitOfWork, tenant_id: str, occurrence_id: str, *, now: datetime, actor: str = "system", sub: Any = UNREAD
) -> Decision:
    conn = uow.conn
    occ = repo.lock_occurrence(conn, tenant_id, occurrence_id)
    if occ is not None and occ["started_at"] is not None:
        return _already_started(occ, now)
    sub = _current(uow, tenant_id, sub)
    refusal = admission_refusal(sub, now)
    if refusal is not None:
        return refuse(refusal)
    assert sub is not None
    flags = repo.settings(conn, tenant_id)
    if flags["upgrade_required_peak"] is not None:
        limit = sub.plan.limit(flags["upgrade_required_meter"] or "")
        if upgrade_required(flags["upgrade_required_peak"], limit.included if limit else None):
            return refuse(reasons.UPGRADE_REQUIRED)
    occ = repo.create_occurrence(conn, tenant_id=tenant_id, occurrence_id=occurrence_id, now=now)
    if occ["started_at"] is not None:
        # Creating it waited for a concurrent first entry that started it: S6's clock runs
        # from that entry, so keep its start, deadline and alerts (G12: the warning once).
        return _already_started(occ, now)
    deadline = deadline_for(now, sub.plan.event_duration)
    repo.update_occurrence(conn, tenant_id, occurrence_id, started_at=now, deadline_at=deadline, subscription_id=sub.id)
    if deadline is not None:
        warn_at = deadline - sub.plan.duration_warning
        if warn_at > now:
            due.schedule(
                uow,
                tenant_id=tenant_id,
                kind=ENDING_SOON,
                ref=occurrence_id,
                due_at=warn_at,
                now=now,
                payload={
                    "deadline": deadline.isoformat(),
                    "minutes_left": int(sub.plan.duration_warning.total_seconds() // 60),
                },
            )
        due.schedule(uow, tenant_id=tenant_id, kind=OCCURRENCE_END, ref=occurrence_id, due_at=deadline, now=now)
    return replace(admit(reasons.STARTED, counted=False, deadline=deadline), started=True)


def join_in(
    uow: UnitOfWork,
    tenant_id: str,
    occurrence_id: str,
    person_id: str,
    *,
    mode: Mode,
    role: Role,
    now: datetime,
    actor: str = "system",
    cause: str | None = None,
    sub: Any = UNREAD,
    read: tuple[dict[str, Any] | None, dict[str, Any] | None] | None = None,
) -> Decision:
    """`read`: the occurrence (locked) and the person, when the caller read them in this transaction."""
    conn = uow.conn
    if role is not Role.ATTENDEE:
        sub = _current(uow, tenant_id, sub)
        # S2: a co-host on a plan without co-hosts is refused before the occurrence is opened.
        early = host_refusal(sub.plan, role, hosts=0, already_hosting=True) if sub is not None else None
        if early is not None:
            return refuse(early[0], **early[1])
    # The person is read with the occurrence, once its lock is held (PostgreSQL).
    if read is None:
        read = repo.lock_occurrence_and_person(conn, tenant_id, occurrence_id, person_id)
    occ, person = read
    started = False
    if occ is None or occ["started_at"] is None:
        sub = _current(uow, tenant_id, sub)
        opened = start_in(
            uow, tenant_id, occurrence_id, now=now, actor=actor, sub=sub
        )  # S6: the clock starts at the first entry
        if not opened.admitted:
            return opened
        started = opened.started
        # Read both again: creating the occurrence may have waited for a concurrent
        # first join, whose person row the first read could not see.
        occ, person = repo.lock_occurrence_and_person(conn, tenant_id, occurrence_id, person_id)
        assert occ is not None
    decision = _join_open(
        uow, tenant_id, occ, person, person_id, mode=mode, role=role, now=now, actor=actor, cause=cause, sub=sub
    )
    return replace(decision, started=True) if started else decision


def _join_open(
    uow: UnitOfWork, tenant_id: str, occ: dict[str, Any], person: dict[str, Any] | None, person_id: str,
    *, mode: Mode, role: Role, now: datetime, actor: str, cause: str | None, sub: Any,
) -> Decision:
    """A join into an occurrence that has started: the snapshot is read, the pure core decides
    (`domain.admission_core`), and its effects are written; a pool's guard that refuses makes
    the core decide again with that pool exhausted."""
    conn = uow.conn
    sub = _current(uow, tenant_id, sub)
    meters = _meters(uow, sub)
    limits = tuple(_occurrence_limits(sub, meters))
    snapshot_person = _person_state(person)
    billable = role.is_billable and not snapshot_person.counted
    waiting_room = role.is_billable and any(limit.policy is Policy.HARD_WITH_WAITING_ROOM for _, limit in limits)
    tickets = repo.live_tickets(conn, tenant_id, occ["id"], live_since=now - WAITING_TICKET_TTL) if waiting_room else ()
    pools: tuple[Pool, ...] = ()
    session_limit: int | None = None
    if billable and sub is not None:
        keys = {m.key for m in meters.values() if m.kind is MeterKind.ATTENDEES}
        pools, session_limit = _pools(conn, tenant_id, sub, meters, keys)
    snapshot = Snapshot(
        now=now, plan=sub.plan if sub is not None else None, refusal=admission_refusal(sub, now), limits=limits,
        room=_room(occ, tickets), people={person_id: snapshot_person}, pools=pools,
    )
    request = Join(person_id, mode, role)
    decision, effects = decide_join(snapshot, request)
    pool_warnings: list[Warning] = []
    written = False
    if effects.take:
        assert sub is not None
        subject = f"occurrence:{occ['id']}"
        why = cause or f"join {occ['id']} {person_id} {mode.value} by {actor}"
        taken = _take_and_write(
            uow, tenant_id, sub, meters, snapshot, occ["id"], person_id, person, effects,
            now=now, subject=subject, actor=actor, cause=why,
        )
        if taken is not None:
            pool_warnings, written = list(taken), True
        else:
            refused, _, pool_warnings = consume_pools(
                uow, tenant_id, sub, meters, set(effects.take), now=now, subject=subject, person_id=person_id,
                actor=actor, cause=why, session_limit=session_limit,
            )
            if refused is not None:
                decision, effects = decide_join(with_pool_exhausted(snapshot, refused), request)
                assert not effects.take, "a pool the guard refused is never taken"
    if not written:
        _write(conn, tenant_id, occ["id"], person_id, person, effects)
    for meter, limit, count in effects.over:
        _went_over(uow, tenant_id, occ, meter, limit, count, now, actor)
    if pool_warnings:
        decision = replace(
            decision, warnings=decision.warnings + tuple(w.text for w in pool_warnings),
            warning_codes=decision.warning_codes + tuple(w.code for w in pool_warnings),
        )
    return decision


def _person_state(row: dict[str, Any] | None) -> Person:
    if row is None:
        return NEW
    return Person(
        exists=True, counted=row["counted_at"] is not None, present=bool(row["present"]), host=bool(row["host"]),
        ticket=row["waiting_ticket"], presented_at=row["updated_at"],
    )


def _room(occ: dict[str, Any], tickets: tuple[int, ...]) -> Room:
    return Room(
        id=occ["id"], deadline=occ["deadline_at"], ended_at=occ["ended_at"], counted=occ["counted"],
        present=occ["present"], peak=occ["peak"], queue_tail=occ["queue_tail"],
        cap_exceeded=occ["cap_exceeded_at"] is not None, hosts=occ["hosts"], live_tickets=tickets,
    )


def _write(
    conn: Any, tenant_id: str, occurrence_id: str, person_id: str, row: dict[str, Any] | None, effects: Effects
) -> None:
    """The person's and the occurrence's rows, as the core said."""
    if effects.person:
        repo.put_person(conn, tenant_id, occurrence_id, person_id, exists=row is not None, **effects.person)
    if effects.room:
        repo.update_occurrence(conn, tenant_id, occurrence_id, **effects.room)


def _went_over(
    uow: UnitOfWork,
    tenant_id: str,
    occ: dict[str, Any],
    meter: Meter,
    limit: Limit,
    count: int,
    now: datetime,
    actor: str,
) -> None:
    """S5 soft (or overage): nobody is blocked; the host is told once per occurrence and future starts need an
    upgrade."""
    if limit.policy is Policy.SOFT:
        flags = repo.settings(uow.conn, tenant_id)
        peak = max(count, flags["upgrade_required_peak"] or 0)
        repo.put_settings(uow.conn, tenant_id, now, upgrade_required_peak=peak, upgrade_required_meter=meter.key)
    if occ["cap_exceeded_at"] is None:
        occ["cap_exceeded_at"] = now
        repo.update_occurrence(uow.conn, tenant_id, occ["id"], cap_exceeded_at=now)
        signals.publish(
            uow,
            Signal(
                "usage.cap_exceeded",
                tenant_id,
                now,
                actor,
                occ["id"],
                {"meter": meter.key, "limit": limit.included, "count": count, "policy": limit.policy.value},
            ),
        )


def leave_in(uow: UnitOfWork, tenant_id: str, occurrence_id: str, person_id: str, *, now: datetime) -> Decision:
    """A person leaves the room, their host seat or the waiting room.  An occurrence that does not
    exist is `not_found`, as for `end`."""
    occ, person = repo.lock_occurrence_and_person(uow.conn, tenant_id, occurrence_id, person_id)
    if occ is None:
        raise DomainError(reasons.NOT_FOUND, what="Occurrence")
    people = {person_id: _person_state(person)}
    snapshot = Snapshot(now=now, plan=None, refusal=None, limits=(), room=_room(occ, ()), people=people)
    decision, effects = decide_leave(snapshot, Leave(person_id))
    _write(uow.conn, tenant_id, occurrence_id, person_id, person, effects)
    return decision


def register_in(uow: UnitOfWork, tenant_id: str, occurrence_id: str, person_id: str, *, now: datetime) -> Decision:
    conn = uow.conn
    occ = repo.create_occurrence(conn, tenant_id=tenant_id, occurrence_id=occurrence_id, now=now)
    person = repo.get_person(conn, tenant_id, occurrence_id, person_id)
    if person is None or person["registered_at"] is None:
        repo.put_person(
            conn, tenant_id, occurrence_id, person_id, exists=person is not None, registered_at=now, updated_at=now
        )
    return admit(reasons.REGISTERED, counted=False, deadline=occ["deadline_at"])


def end_in(uow: UnitOfWork, tenant_id: str, occurrence_id: str, *, now: datetime) -> Decision:
    occ = repo.lock_occurrence(uow.conn, tenant_id, occurrence_id)
    if occ is None:
        raise DomainError(reasons.NOT_FOUND, what="Occurrence")
    if occ["ended_at"] is None:
        repo.empty_room(uow.conn, tenant_id, occurrence_id, now)
        repo.update_occurrence(uow.conn, tenant_id, occurrence_id, ended_at=now, present=0, hosts=0)
        due.cancel(uow, tenant_id=tenant_id, kind=ENDING_SOON, ref=occurrence_id, now=now)
        due.cancel(uow, tenant_id=tenant_id, kind=OCCURRENCE_END, ref=occurrence_id, now=now)
    ended = reasons.OCCURRENCE_ENDED
    return Decision(False, False, ended.code, ended.message(), deadline=occ["deadline_at"])


@due.handler(ENDING_SOON)
def _ending_soon(uow: UnitOfWork, item: dict[str, Any], now: datetime) -> str:
    occ = repo.lock_occurrence(uow.conn, item["tenant_id"], item["ref"])
    if occ is None or occ["ended_at"] is not None:
        return "nothing to do: occurrence ended"
    data = {"deadline": occ["deadline_at"], "minutes_left": item["payload"].get("minutes_left")}
    signals.publish(uow, Signal("occurrence.ending_soon", item["tenant_id"], now, "system", item["ref"], data))
    return f"warned: ends at {occ['deadline_at'].isoformat()}"


@due.handler(OCCURRENCE_END)
def _occurrence_end(uow: UnitOfWork, item: dict[str, Any], now: datetime) -> str:
    """S6: at the deadline everyone is removed."""
    occ = repo.lock_occurrence(uow.conn, item["tenant_id"], item["ref"])
    if occ is None or occ["ended_at"] is not None:
        return "nothing to do: occurrence ended"
    repo.empty_room(uow.conn, item["tenant_id"], item["ref"], now)
    repo.update_occurrence(uow.conn, item["tenant_id"], item["ref"], ended_at=now, present=0, hosts=0)
    return "ended: everyone removed"


# --- period pools (L3, A6, A3) ---------------------------------------------------------


def consume_pools(
    uow: UnitOfWork,
    tenant_id: str,
    sub: Subscription,
    meters: dict[str, Meter],
    keys: set[str],
    *,
    now: datetime,
    subject: str,
    person_id: str | None,
    actor: str,
    cause: str,
    session_limit: Any = UNREAD,
) -> tuple[str | None, reasons.Reason | None, list[Warning]]:
    """Count one unit on each of these period meters, or refuse without counting any: every
    counter is taken first, and only then is each unit written to the ledger and announced
    (a refusal by a later meter leaves no ledger row of an earlier one behind, G3).
    The meter that refused and its reason, or (None, None) and the A6 warnings."""
    conn = uow.conn
    warnings: list[Warning] = []
    done: list[tuple[str, Any, int, Meter, int | None]] = []
    start, end = sub.period.start, sub.period.end
    if session_limit is UNREAD:
        session_limit = _session_limit(conn, tenant_id, sub, keys)
    for key in sorted(keys):
        meter = meters[key]
        limit = sub.plan.limit(key)
        trial_bound = _trial_bound(sub, key)
        capped = meter.scope is Scope.PERIOD
        counter: dict[str, Any] = {
            "tenant_id": tenant_id, "subscription_id": sub.id, "meter": key, "period_start_at": start,
        }

        def take(carried_in: int) -> tuple[Any, int | None]:
            # called within this iteration only, so the loop's current values are the ones meant
            rule = pool_rule(
                sub.plan,
                limit if capped else None,  # noqa: B023
                meter.kind,  # noqa: B023
                carried_in=carried_in,
                customer_limit=session_limit,  # noqa: B023
                trial_bound=trial_bound,  # noqa: B023
            )
            return rule, repo.consume(conn, **counter, cap=rule.cap, carried_in=carried_in)  # noqa: B023

        carried_in, cached = repo.carried_in(conn, **counter, period_end_at=end)
        rule, after = take(carried_in)
        if after is None and cached:
            # A cached figure is checked on a fresh read before anything is concluded: its counter
            # may come from a creation that rolled back, or from one not committed when the
            # update ran (PostgreSQL: that row was invisible to it, and may be visible now).
            rule, after = take(repo.carried_in(conn, **counter, period_end_at=end, fresh=True)[0])
        if after is None and rule.reason is None:
            # An uncapped pool (overage) never refuses: never answer "counted" without the unit.
            raise RuntimeError(f"usage counter {counter} could not be updated")
        if after is None:
            for undo, *_ in done:
                repo.consume(
                    conn,
                    tenant_id=tenant_id,
                    subscription_id=sub.id,
                    meter=undo,
                    period_start_at=start,
                    cap=None,
                    units=-1,
                )
            if trial_bound is not None:
                _trial_exhausted(uow, tenant_id, sub, key, trial_bound, now, actor)
            return key, rule.reason, []
        done.append((key, rule, after, meter, trial_bound))
    for key, rule, after, meter, trial_bound in done:
        repo.record(
            conn,
            tenant_id=tenant_id,
            subscription_id=sub.id,
            meter=key,
            period_start_at=start,
            subject=subject,
            person_id=person_id,
            at=now,
            cause=cause[:1000],
        )
        warnings += _counted(uow, tenant_id, sub, key, rule, after, meter, trial_bound, now=now, actor=actor)
    return None, None, warnings


def _counted(
    uow: UnitOfWork, tenant_id: str, sub: Subscription, key: str, rule: Any, after: int, meter: Meter,
    trial_bound: int | None, *, now: datetime, actor: str,
) -> tuple[Warning, ...]:
    """A unit taken and written to the ledger: announced (alerts, trial usage) and its A6 warnings."""
    if meter.scope is Scope.PERIOD:
        # `limit`: what alerts measure against (the tenant's own session limit, A6);
        # `trial`: the trial's bound is in force (A3 has its own reminders).
        data = {
            "meter": key, "before": after - 1, "after": after, "included": rule.included, "limit": rule.warn_at,
            "trial": trial_bound is not None, "period_start": sub.period.start, "period_end": sub.period.end,
        }
        signals.publish(uow, Signal("usage.recorded", tenant_id, now, actor, sub.id, data))
    if trial_bound is not None and after >= trial_bound:
        _trial_exhausted(uow, tenant_id, sub, key, trial_bound, now, actor)
    return session_warnings(after, rule, meter.kind)


def _take_and_write(
    uow: UnitOfWork, tenant_id: str, sub: Subscription, meters: dict[str, Meter], snapshot: Snapshot,
    occurrence_id: str, person_id: str, row: dict[str, Any] | None, effects: Effects,
    *, now: datetime, subject: str, actor: str, cause: str,
) -> tuple[Warning, ...] | None:
    """PostgreSQL, a join taking from one pool outside a trial's bound: the guarded take, the ledger
    row, the person and the occurrence in one round trip (`repos.metering.take_and_write`).  Its
    warnings; None when it does not apply or its guard took nothing (nothing was written: the
    caller goes the general way, which re-reads a cached figure and re-decides a refusal)."""
    if uow.dialect != "postgresql" or len(effects.take) != 1 or not effects.person:
        return None
    key = effects.take[0]
    if _trial_bound(sub, key) is not None:
        return None
    pool = next(p for p in snapshot.pools if p.meter == key)
    carried_in, _ = repo.carried_in(
        uow.conn, tenant_id=tenant_id, subscription_id=sub.id, meter=key, period_start_at=sub.period.start,
        period_end_at=sub.period.end,
    )
    record = {
        "tenant_id": tenant_id, "subscription_id": sub.id, "meter": key, "period_start_at": sub.period.start,
        "subject": subject, "person_id": person_id, "at": now, "cause": cause[:1000],
    }
    after = repo.take_and_write(
        uow.conn, tenant_id=tenant_id, subscription_id=sub.id, meter=key, period_start_at=sub.period.start,
        cap=pool.rule.cap, carried_in=carried_in, occurrence_id=occurrence_id, person_id=person_id,
        person_exists=row is not None, person=effects.person, room=effects.room, record=record,
    )
    if after is None:
        return None
    return _counted(uow, tenant_id, sub, key, pool.rule, after, meters[key], None, now=now, actor=actor)


def _trial_bound(sub: Subscription, key: str) -> int | None:
    if sub.status is Status.TRIALING and sub.plan.trial is not None:
        return sub.plan.trial.usage.get(key)
    return None


def _session_limit(conn: Any, tenant_id: str, sub: Subscription, keys: set[str]) -> int | None:
    """The tenant's own session limit (A6), read only where a plan's limit allows one."""
    if any((limit := sub.plan.limit(k)) is not None and limit.customer_limit for k in keys):
        return repo.settings(conn, tenant_id)["session_limit"]
    return None


def _pools(
    conn: Any, tenant_id: str, sub: Subscription, meters: dict[str, Meter], keys: set[str]
) -> tuple[tuple[Pool, ...], int | None]:
    """The period pools a counted unit takes from, with their rules, for the core's snapshot
    (their use is left to the guard: `used=None`), and the session limit they were read with."""
    session_limit = _session_limit(conn, tenant_id, sub, keys)
    pools = []
    for key in sorted(keys):
        meter, limit = meters[key], sub.plan.limit(key)
        carried_in, _ = repo.carried_in(
            conn, tenant_id=tenant_id, subscription_id=sub.id, meter=key, period_start_at=sub.period.start,
            period_end_at=sub.period.end,
        )
        capped = meter.scope is Scope.PERIOD
        rule = pool_rule(
            sub.plan, limit if capped else None, meter.kind, carried_in=carried_in, customer_limit=session_limit,
            trial_bound=_trial_bound(sub, key),
        )
        pools.append(Pool(key, meter.kind, rule))
    return tuple(pools), session_limit


def _trial_exhausted(
    uow: UnitOfWork, tenant_id: str, sub: Subscription, meter: str, bound: int, now: datetime, actor: str
) -> None:
    """A3: the trial's usage bound is used up; published once (lifecycle ends the trial)."""
    if repo.mark_trial_exhausted(
        uow.conn, tenant_id=tenant_id, subscription_id=sub.id, meter=meter, period_start_at=sub.period.start, now=now
    ):
        signals.publish(
            uow, Signal("usage.trial_exhausted", tenant_id, now, actor, sub.id, {"meter": meter, "bound": bound})
        )


# --- conversations (A1, A2) -----------------------------------------------------------------


def message_in(
    uow: UnitOfWork,
    tenant_id: str,
    conversation_id: str,
    sender: Sender,
    *,
    now: datetime,
    actor: str = "system",
    cause: str | None = None,
    sub: Any = UNREAD,
) -> Decision:
    conn = uow.conn
    sub = _current(uow, tenant_id, sub)
    meters = _meters(uow, sub)
    session_meters = {k for k, m in meters.items() if m.kind is MeterKind.BILLABLE_SESSIONS}
    length = next((meters[k].window for k in sorted(session_meters) if meters[k].window), None) or DEFAULT_WINDOW
    conv = repo.lock_conversation(conn, tenant_id, conversation_id)
    if conv is None:
        # Create the row first (an empty window) and lock it, so two first messages
        # of one conversation in parallel are decided one after the other.
        repo.insert_conversation(
            conn,
            tenant_id=tenant_id,
            id=conversation_id,
            window_started_at=now,
            window_ends_at=now,
            window_billed=False,
            windows=0,
            billable=0,
            first_message_at=now,
            last_message_at=now,
        )
        conv = repo.lock_conversation(conn, tenant_id, conversation_id)
        assert conv is not None
    window, earlier = stored_windows(conv, length)
    answered_only = bool(sub and sub.plan.answered_only)
    effect = on_message(
        window, now, sender, length=length, answered_only=answered_only, earlier=earlier, last=conv["last_message_at"]
    )
    unmetered = effect.bills and not session_meters
    if unmetered:
        # A plan that meters no billable sessions counts none: `billable` stays equal to the ledger (G3).
        effect = unbilled(effect)
    warnings: list[Warning] = []
    if effect.opens or effect.bills:
        refusal = admission_refusal(sub, now)
        if refusal is not None:
            return refuse(refusal)
    if effect.bills:
        assert sub is not None
        _, refused, warnings = consume_pools(
            uow,
            tenant_id,
            sub,
            meters,
            session_meters,
            now=now,
            subject=f"conversation:{conversation_id}",
            person_id=None,
            actor=actor,
            cause=cause or f"message {conversation_id} from {sender.value} by {actor}",
        )
        if refused is not None:
            return refuse(refused)
    repo.update_conversation(
        conn,
        tenant_id,
        conversation_id,
        **window_columns(effect),
        windows=conv["windows"] + int(effect.opens),
        billable=conv["billable"] + int(effect.bills),
        last_message_at=max(now, conv["last_message_at"]),
    )
    if effect.bills:
        return admit(reasons.ADMITTED, counted=True, warnings=tuple(warnings))
    if unmetered:
        return admit(reasons.ADMITTED, counted=False)
    if effect.opens:
        return admit(reasons.NOT_BILLABLE_OUTBOUND, counted=False)
    return admit(reasons.WINDOW_OPEN, counted=False)
