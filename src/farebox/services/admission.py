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

from farebox.adapters.db.repos import metering as repo
from farebox.adapters.db.repos import subscriptions as subs_repo
from farebox.adapters.db.uow import UnitOfWork
from farebox.bootstrap import Farebox
from farebox.domain import reasons
from farebox.domain.access import Principal, require_tenant_access
from farebox.domain.admission import Decision, Mode, Role, admit, check_cap, deadline_for, past_deadline, refuse, upgrade_required
from farebox.domain.catalog import Limit, Meter, MeterKind, Policy, Scope
from farebox.domain.conversations import Sender, Window, on_message
from farebox.domain.metering import pool_rule, session_warnings
from farebox.domain.reasons import DomainError
from farebox.domain.subscriptions import Status, Subscription, admission_refusal
from farebox.services import due, signals
from farebox.services.clocks import now_and_current, now_for
from farebox.services.signals import Signal

ENDING_SOON = "occurrence_ending_soon"
OCCURRENCE_END = "occurrence_end"
MAX_ID = 64
DEFAULT_WINDOW = timedelta(hours=24)  # A1
# `sub=UNREAD`: the `*_in` functions read the current subscription themselves.  The
# public functions pass the one read in the decision's first statement (`_run`);
# nothing between that read and its use writes a subscription.
UNREAD: Any = object()


# --- public service functions ------------------------------------------------------


def start_occurrence(fb: Farebox, actor: Principal, tenant_id: str, occurrence_id: str, *, cause: str = "api") -> Decision:
    """Open an occurrence's room: refused when the subscription cannot start one (G9, G10, S5); else its deadline (S6)."""
    return _run(fb, actor, tenant_id, lambda uow, now, sub: start_in(uow, tenant_id, _id(occurrence_id), now=now, actor=actor.label(), sub=sub), subscription=True)


def join(fb: Farebox, actor: Principal, tenant_id: str, occurrence_id: str, person_id: str, *, mode: str = "live", role: str = "attendee") -> Decision:
    """A person enters an occurrence: counted once per occurrence (L2), members never (G5), within the plan's caps and pool."""
    m, r = _enum(Mode, mode, "mode"), _enum(Role, role, "role")
    return _run(fb, actor, tenant_id, lambda uow, now, sub: join_in(uow, tenant_id, _id(occurrence_id), _person(person_id), mode=m, role=r, now=now, actor=actor.label(), sub=sub), subscription=True)


def leave(fb: Farebox, actor: Principal, tenant_id: str, occurrence_id: str, person_id: str) -> Decision:
    """A person leaves the room (or the waiting room): frees a seat under a concurrent cap (S5)."""
    return _run(fb, actor, tenant_id, lambda uow, now, _sub: leave_in(uow, tenant_id, _id(occurrence_id), _person(person_id), now=now))


def register(fb: Farebox, actor: Principal, tenant_id: str, occurrence_id: str, person_id: str) -> Decision:
    """A registration: always accepted, never counted (G5, L7)."""
    return _run(fb, actor, tenant_id, lambda uow, now, _sub: register_in(uow, tenant_id, _id(occurrence_id), _person(person_id), now=now))


def end_occurrence(fb: Farebox, actor: Principal, tenant_id: str, occurrence_id: str) -> Decision:
    """The host ends the occurrence: everyone leaves; later live joins get `duration_exceeded`."""
    return _run(fb, actor, tenant_id, lambda uow, now, _sub: end_in(uow, tenant_id, _id(occurrence_id), now=now))


def message(fb: Farebox, actor: Principal, tenant_id: str, conversation_id: str, *, sender: str) -> Decision:
    """A conversation message: opens a 24 h billable window when none is open (A1), billed by the plan's rule (A2)."""
    s = _enum(Sender, sender, "from")
    return _run(fb, actor, tenant_id, lambda uow, now, sub: message_in(uow, tenant_id, _id(conversation_id), s, now=now, actor=actor.label(), sub=sub), subscription=True)


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
        raise DomainError(reasons.VALIDATION_ERROR, detail=f"{field} must be one of {allowed}", details={"field": field}) from None


def _id(value: str) -> str:
    if not value or len(value) > MAX_ID:
        raise DomainError(reasons.VALIDATION_ERROR, detail=f"ids are 1 to {MAX_ID} characters", details={"field": "id"})
    return value


def _person(value: str) -> str:
    if not value or len(value) > 128:
        raise DomainError(reasons.VALIDATION_ERROR, detail="person_id is 1 to 128 characters", details={"field": "person_id"})
    return value


# --- occurrences -------------------------------------------------------------------


def _meters(uow: UnitOfWork, sub: Subscription | None) -> dict[str, Meter]:
    return repo.meters_of(uow.conn, sub.plan_version_id) if sub is not None else {}


def _occurrence_limits(sub: Subscription | None, meters: dict[str, Meter]) -> list[tuple[Meter, Limit]]:
    if sub is None:
        return []
    return [(meters[l.meter], l) for l in sub.plan.limits if l.meter in meters and meters[l.meter].scope is Scope.OCCURRENCE]


def _already_started(occ: dict[str, Any], now: datetime) -> Decision:
    if occ["ended_at"] is not None or past_deadline(occ["deadline_at"], now):
        return refuse(reasons.DURATION_EXCEEDED, deadline=occ["deadline_at"])
    return admit(reasons.STARTED, counted=False, deadline=occ["deadline_at"])


def start_in(uow: UnitOfWork, tenant_id: str, occurrence_id: str, *, now: datetime, actor: str = "system", sub: Any = UNREAD) -> Decision:
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
            due.schedule(uow, tenant_id=tenant_id, kind=ENDING_SOON, ref=occurrence_id, due_at=warn_at, now=now, payload={"deadline": deadline.isoformat(), "minutes_left": int(sub.plan.duration_warning.total_seconds() // 60)})
        due.schedule(uow, tenant_id=tenant_id, kind=OCCURRENCE_END, ref=occurrence_id, due_at=deadline, now=now)
    return admit(reasons.STARTED, counted=False, deadline=deadline)


def join_in(
    uow: UnitOfWork, tenant_id: str, occurrence_id: str, person_id: str, *, mode: Mode, role: Role, now: datetime, actor: str = "system", cause: str | None = None, sub: Any = UNREAD
) -> Decision:
    conn = uow.conn
    # The person is read with the occurrence, once its lock is held (PostgreSQL).
    occ, person = repo.lock_occurrence_and_person(conn, tenant_id, occurrence_id, person_id)
    if occ is None or occ["started_at"] is None:
        sub = _current(uow, tenant_id, sub)
        opened = start_in(uow, tenant_id, occurrence_id, now=now, actor=actor, sub=sub)  # S6: the clock starts at the first entry
        if not opened.admitted:
            return opened
        # Read both again: creating the occurrence may have waited for a concurrent
        # first join, whose person row the first read could not see.
        occ, person = repo.lock_occurrence_and_person(conn, tenant_id, occurrence_id, person_id)
        assert occ is not None
    deadline = occ["deadline_at"]
    if mode.is_live and (occ["ended_at"] is not None or past_deadline(deadline, now)):
        return refuse(reasons.DURATION_EXCEEDED, deadline=deadline)
    if not role.is_billable:
        return admit(reasons.NOT_BILLABLE_MEMBER, counted=False, deadline=deadline)
    sub = _current(uow, tenant_id, sub)
    meters = _meters(uow, sub)
    limits = _occurrence_limits(sub, meters)
    returning = person is not None and person["counted_at"] is not None
    if not returning:
        refusal = admission_refusal(sub, now)
        if refusal is not None:
            return refuse(refusal, deadline=deadline)
    # Seats: concurrent caps and waiting rooms count the people in the room (S5).
    already_present = person is not None and person["present"]
    over: list[tuple[Meter, Limit, int]] = []
    if not already_present:
        for meter, limit in limits:
            if meter.kind is MeterKind.CONCURRENT_ATTENDEES or limit.policy is Policy.HARD_WITH_WAITING_ROOM:
                seat = _seat(conn, tenant_id, occ, person, person_id, limit, now)
                if isinstance(seat, Decision):
                    return replace(seat, deadline=deadline)
                if seat:
                    over.append((meter, limit, occ["present"] + 1))
    if returning:
        _enter(conn, tenant_id, occ, person_id, person, now, mode, counted=False, entering=not already_present)
        return admit(reasons.ALREADY_COUNTED, counted=False, deadline=deadline)
    # Unique attendees per occurrence (S4, L2) under the occurrence's cap.
    for meter, limit in limits:
        if meter.kind is MeterKind.ATTENDEES and limit.policy is not Policy.HARD_WITH_WAITING_ROOM:
            check = check_cap(occ["counted"], limit.included, limit.policy)
            if not check.allowed:
                return refuse(reasons.ATTENDEE_CAP_REACHED, deadline=deadline, limit=limit.included)
            if check.over:
                over.append((meter, limit, occ["counted"] + 1))
    assert sub is not None
    kinds = {m.key for m in meters.values() if m.kind is MeterKind.ATTENDEES}
    refused, warnings = consume_pools(uow, tenant_id, sub, meters, kinds, now=now, subject=f"occurrence:{occurrence_id}", person_id=person_id, actor=actor, cause=cause or f"join {occurrence_id} {person_id} {mode.value} by {actor}")
    if refused is not None:
        return refuse(refused, deadline=deadline)
    _enter(conn, tenant_id, occ, person_id, person, now, mode, counted=True, entering=not already_present)
    for meter, limit, count in over:
        warnings += _went_over(uow, tenant_id, occ, meter, limit, count, now, actor)
    return admit(reasons.ADMITTED, counted=True, warnings=tuple(warnings), deadline=deadline)


def _seat(conn: Any, tenant_id: str, occ: dict[str, Any], person: dict[str, Any] | None, person_id: str, limit: Limit, now: datetime) -> Decision | bool:
    """A seat in the room under a concurrent cap: True if over a soft cap, False if fine, or a refusal."""
    present = occ["present"]
    if limit.policy is Policy.HARD_WITH_WAITING_ROOM and limit.included is not None:
        free = limit.included - present
        ticket = person["waiting_ticket"] if person else None
        ahead = repo.waiting_ahead(conn, tenant_id, occ["id"], ticket) if ticket is not None else repo.waiting_count(conn, tenant_id, occ["id"])
        if ahead < free:
            return False
        if ticket is None:
            ticket = occ["queue_tail"] + 1
            occ["queue_tail"] = ticket
            repo.update_occurrence(conn, tenant_id, occ["id"], queue_tail=ticket)
            repo.put_person(conn, tenant_id, occ["id"], person_id, exists=person is not None, waiting_ticket=ticket, updated_at=now)
        return refuse(reasons.WAITING_ROOM, position=ahead + 1)
    check = check_cap(present, limit.included, limit.policy)
    if not check.allowed:
        return refuse(reasons.ATTENDEE_CAP_REACHED, limit=limit.included)
    return check.over


def _enter(conn: Any, tenant_id: str, occ: dict[str, Any], person_id: str, person: dict[str, Any] | None, now: datetime, mode: Mode, *, counted: bool, entering: bool) -> None:
    values: dict[str, Any] = {"present": True, "waiting_ticket": None, "updated_at": now}
    if counted:
        values.update(counted_at=now, first_mode=mode.value)
    repo.put_person(conn, tenant_id, occ["id"], person_id, exists=person is not None, **values)
    counted_n = occ["counted"] + (1 if counted else 0)
    present_n = occ["present"] + (1 if entering else 0)
    repo.update_occurrence(conn, tenant_id, occ["id"], counted=counted_n, present=present_n, peak=max(occ["peak"], present_n))


def _went_over(uow: UnitOfWork, tenant_id: str, occ: dict[str, Any], meter: Meter, limit: Limit, count: int, now: datetime, actor: str) -> list[str]:
    """S5 soft (or overage): nobody is blocked; the host is told once per occurrence and future starts need an upgrade."""
    if limit.policy is Policy.SOFT:
        flags = repo.settings(uow.conn, tenant_id)
        peak = max(count, flags["upgrade_required_peak"] or 0)
        repo.put_settings(uow.conn, tenant_id, now, upgrade_required_peak=peak, upgrade_required_meter=meter.key)
    if occ["cap_exceeded_at"] is None:
        occ["cap_exceeded_at"] = now
        repo.update_occurrence(uow.conn, tenant_id, occ["id"], cap_exceeded_at=now)
        signals.publish(uow, Signal("usage.cap_exceeded", tenant_id, now, actor, occ["id"], {"meter": meter.key, "limit": limit.included, "count": count, "policy": limit.policy.value}))
    if limit.policy is Policy.SOFT:
        return [f"This occurrence is over its limit of {limit.included} attendees; please upgrade your plan before starting new sessions."]
    return []


def leave_in(uow: UnitOfWork, tenant_id: str, occurrence_id: str, person_id: str, *, now: datetime) -> Decision:
    conn = uow.conn
    occ, person = repo.lock_occurrence_and_person(conn, tenant_id, occurrence_id, person_id)
    if occ is not None and person is not None:
        if person["present"]:
            repo.put_person(conn, tenant_id, occurrence_id, person_id, exists=True, present=False, updated_at=now)
            repo.update_occurrence(conn, tenant_id, occurrence_id, present=max(0, occ["present"] - 1))
        elif person["waiting_ticket"] is not None:
            repo.put_person(conn, tenant_id, occurrence_id, person_id, exists=True, waiting_ticket=None, updated_at=now)
    return Decision(False, False, reasons.LEFT.code, reasons.LEFT.message(), deadline=occ["deadline_at"] if occ else None)


def register_in(uow: UnitOfWork, tenant_id: str, occurrence_id: str, person_id: str, *, now: datetime) -> Decision:
    conn = uow.conn
    occ = repo.create_occurrence(conn, tenant_id=tenant_id, occurrence_id=occurrence_id, now=now)
    person = repo.get_person(conn, tenant_id, occurrence_id, person_id)
    if person is None or person["registered_at"] is None:
        repo.put_person(conn, tenant_id, occurrence_id, person_id, exists=person is not None, registered_at=now, updated_at=now)
    return admit(reasons.REGISTERED, counted=False, deadline=occ["deadline_at"])


def end_in(uow: UnitOfWork, tenant_id: str, occurrence_id: str, *, now: datetime) -> Decision:
    occ = repo.lock_occurrence(uow.conn, tenant_id, occurrence_id)
    if occ is None:
        raise DomainError(reasons.NOT_FOUND, what="Occurrence")
    if occ["ended_at"] is None:
        repo.empty_room(uow.conn, tenant_id, occurrence_id, now)
        repo.update_occurrence(uow.conn, tenant_id, occurrence_id, ended_at=now, present=0)
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
    repo.update_occurrence(uow.conn, item["tenant_id"], item["ref"], ended_at=now, present=0)
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
) -> tuple[reasons.Reason | None, list[str]]:
    """Count one unit on each of these period meters, or refuse without counting any: every
    counter is taken first, and only then is each unit written to the ledger and announced
    (a refusal by a later meter leaves no ledger row of an earlier one behind, G3)."""
    conn = uow.conn
    warnings: list[str] = []
    done: list[tuple[str, Any, int, Meter, int | None]] = []
    start, end = sub.period.start, sub.period.end
    session_limit: int | None = None
    for key in sorted(keys):
        meter = meters[key]
        limit = sub.plan.limit(key)
        trial_bound = None
        if sub.status is Status.TRIALING and sub.plan.trial is not None:
            trial_bound = sub.plan.trial.usage.get(key)
        if limit is not None and limit.customer_limit and session_limit is None:
            session_limit = repo.settings(conn, tenant_id)["session_limit"]
        capped = meter.scope is Scope.PERIOD
        counter = {"tenant_id": tenant_id, "subscription_id": sub.id, "meter": key, "period_start_at": start}

        def take(carried_in: int) -> tuple[Any, int | None]:
            rule = pool_rule(sub.plan, limit if capped else None, meter.kind, carried_in=carried_in, customer_limit=session_limit, trial_bound=trial_bound)
            return rule, repo.consume(conn, **counter, cap=rule.cap, carried_in=carried_in)

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
                repo.consume(conn, tenant_id=tenant_id, subscription_id=sub.id, meter=undo, period_start_at=start, cap=None, units=-1)
            if trial_bound is not None:
                _trial_exhausted(uow, tenant_id, sub, key, trial_bound, now, actor)
            return rule.reason, []
        done.append((key, rule, after, meter, trial_bound))
    for key, rule, after, meter, trial_bound in done:
        capped = meter.scope is Scope.PERIOD
        repo.record(conn, tenant_id=tenant_id, subscription_id=sub.id, meter=key, period_start_at=start, subject=subject, person_id=person_id, at=now, cause=cause[:1000])
        if capped:
            # `limit`: what alerts measure against (the tenant's own session limit, A6);
            # `trial`: the trial's bound is in force (A3 has its own reminders).
            data = {
                "meter": key, "before": after - 1, "after": after, "included": rule.included, "limit": rule.warn_at,
                "trial": trial_bound is not None, "period_start": start, "period_end": end,
            }
            signals.publish(uow, Signal("usage.recorded", tenant_id, now, actor, sub.id, data))
        if trial_bound is not None and after >= trial_bound:
            _trial_exhausted(uow, tenant_id, sub, key, trial_bound, now, actor)
        warnings += session_warnings(after, rule, meter.kind)
    return None, warnings


def _trial_exhausted(uow: UnitOfWork, tenant_id: str, sub: Subscription, meter: str, bound: int, now: datetime, actor: str) -> None:
    """A3: the trial's usage bound is used up; published once (lifecycle ends the trial)."""
    if repo.mark_trial_exhausted(uow.conn, tenant_id=tenant_id, subscription_id=sub.id, meter=meter, period_start_at=sub.period.start, now=now):
        signals.publish(uow, Signal("usage.trial_exhausted", tenant_id, now, actor, sub.id, {"meter": meter, "bound": bound}))


# --- conversations (A1, A2) -----------------------------------------------------------------


def message_in(
    uow: UnitOfWork, tenant_id: str, conversation_id: str, sender: Sender, *, now: datetime, actor: str = "system", cause: str | None = None, sub: Any = UNREAD
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
        repo.insert_conversation(conn, tenant_id=tenant_id, id=conversation_id, window_started_at=now, window_ends_at=now, window_billed=False, windows=0, billable=0, first_message_at=now, last_message_at=now)
        conv = repo.lock_conversation(conn, tenant_id, conversation_id)
        assert conv is not None
    window = Window(conv["window_started_at"], conv["window_ends_at"], conv["window_billed"]) if conv["windows"] else None
    effect = on_message(window, now, sender, length=length, answered_only=bool(sub and sub.plan.answered_only))
    unmetered = effect.bills and not session_meters
    if unmetered:
        # A plan that meters no billable sessions counts none: `billable` stays equal to the ledger (G3).
        effect = replace(effect, bills=False, window=replace(effect.window, billed=False))
    warnings: list[str] = []
    if effect.opens or effect.bills:
        refusal = admission_refusal(sub, now)
        if refusal is not None:
            return refuse(refusal)
    if effect.bills:
        assert sub is not None
        refused, warnings = consume_pools(uow, tenant_id, sub, meters, session_meters, now=now, subject=f"conversation:{conversation_id}", person_id=None, actor=actor, cause=cause or f"message {conversation_id} from {sender.value} by {actor}")
        if refused is not None:
            return refuse(refused)
    w = effect.window
    repo.update_conversation(
        conn, tenant_id, conversation_id,
        window_started_at=w.started_at, window_ends_at=w.ends_at, window_billed=w.billed,
        windows=conv["windows"] + int(effect.opens), billable=conv["billable"] + int(effect.bills), last_message_at=max(now, conv["last_message_at"]),
    )
    if effect.bills:
        return admit(reasons.ADMITTED, counted=True, warnings=tuple(warnings))
    if unmetered:
        return admit(reasons.ADMITTED, counted=False)
    if effect.opens:
        return admit(reasons.NOT_BILLABLE_OUTBOUND, counted=False)
    return admit(reasons.WINDOW_OPEN, counted=False)
