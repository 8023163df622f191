"""The pure join decision (metering/domain/admission_core.py), tested against the rules with no database:
S2, S4, S5 (caps, waiting room, F3), L2, L7, G5, G9/G10, A6 warnings (issue 13 item 1)."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from farebox.catalog.domain import Interval, Limit, Meter, MeterKind, Plan, Policy, Scope
from farebox.kernel import reasons
from farebox.kernel.money import Money
from farebox.metering.domain.admission import WAITING_TICKET_TTL, Mode, Role
from farebox.metering.domain.admission_core import (
    Join,
    Leave,
    Pool,
    Room,
    Snapshot,
    decide_all,
    decide_join,
    with_pool_exhausted,
)
from farebox.metering.domain.pools import pool_rule

T0 = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
ATTENDEES = Meter("attendees", MeterKind.ATTENDEES, Scope.OCCURRENCE, "attendee")
CREDITS = Meter("credits", MeterKind.ATTENDEES, Scope.PERIOD, "credit")
SESSIONS = Meter("sessions", MeterKind.BILLABLE_SESSIONS, Scope.PERIOD, "session")


def _plan(*limits: Limit, seats: int | None = None, features: frozenset[str] = frozenset()) -> Plan:
    return Plan(
        code="p",
        name="P",
        price=Money(2900, "USD"),
        interval=Interval.MONTH,
        tier=1,
        limits=limits,
        seats=seats,
        features=features,
    )


def _snapshot(plan: Plan, *, cap: Limit | None = None, pool: Limit | None = None, used: int | None = 0) -> Snapshot:
    limits = ((ATTENDEES, cap),) if cap is not None else ()
    pools = ()
    if pool is not None:
        pools = (Pool("credits", MeterKind.ATTENDEES, pool_rule(plan, pool, MeterKind.ATTENDEES), used),)
    return Snapshot(now=T0, plan=plan, refusal=None, limits=limits, room=Room("o1"), pools=pools)


requests = st.lists(
    st.one_of(
        st.builds(
            Join,
            person_id=st.sampled_from([f"p{i}" for i in range(8)]),
            mode=st.sampled_from(list(Mode)),
            role=st.sampled_from([Role.ATTENDEE, Role.ATTENDEE, Role.ATTENDEE, Role.MEMBER, Role.COHOST]),
        ),
        st.builds(Leave, person_id=st.sampled_from([f"p{i}" for i in range(8)])),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(requests, st.integers(min_value=0, max_value=5), st.sampled_from([Policy.HARD, Policy.SOFT]))
def test_L2_S4_G5_L7_a_person_counts_once_members_never_and_a_hard_pool_is_never_passed(reqs, included, policy):
    cap = Limit("credits", included, policy)
    plan = _plan(cap)
    results, final = decide_all(_snapshot(plan, pool=cap), reqs)
    counted = [r.person_id for r, (d, _) in zip(reqs, results, strict=True) if d.counted]
    assert len(counted) == len(set(counted))  # L2: once per occurrence, whatever the modes
    assert all(
        isinstance(r, Join) and r.role is Role.ATTENDEE for r, (d, _) in zip(reqs, results, strict=True) if d.counted
    )  # G5
    assert final.room.counted == len(counted) == final.pools[0].used
    if policy is Policy.HARD:
        assert final.pools[0].used <= included  # L7
        for r, (d, _) in zip(reqs, results, strict=True):
            if isinstance(r, Join) and r.role is Role.ATTENDEE and not d.admitted:
                assert d.reason == "credits_exhausted"
    else:
        assert all(
            d.admitted
            for r, (d, _) in zip(reqs, results, strict=True)
            if isinstance(r, Join) and r.role is not Role.COHOST
        )


@settings(max_examples=200, deadline=None)
@given(requests, st.integers(min_value=1, max_value=4))
def test_S5_a_waiting_room_never_seats_more_than_its_cap_and_seats_in_ticket_order(reqs, included):
    plan = _plan(Limit("attendees", included, Policy.HARD_WITH_WAITING_ROOM))
    s = _snapshot(plan, cap=plan.limits[0])
    results, final = decide_all(s, reqs)
    assert 0 <= final.room.present <= included
    positions = [d.position for d, _ in results if d.reason == "waiting_room"]
    assert all(p is not None and p >= 1 for p in positions)
    # Replayed one by one, the room never held more than its cap.
    inside: set[str] = set()
    for r, (d, _) in zip(reqs, results, strict=True):
        if isinstance(r, Leave):
            inside.discard(r.person_id)
        elif d.admitted and r.role is Role.ATTENDEE:
            inside.add(r.person_id)
        assert len(inside) <= included


def test_S5_hard_and_soft_occurrence_caps():
    hard = _plan(Limit("attendees", 2, Policy.HARD))
    out, _ = decide_all(_snapshot(hard, cap=hard.limits[0]), [Join("a"), Join("b"), Join("c"), Join("a")])
    assert [d.reason for d, _ in out] == ["admitted", "admitted", "attendee_cap_reached", "already_counted"]
    soft = _plan(Limit("attendees", 2, Policy.SOFT))
    out, final = decide_all(_snapshot(soft, cap=soft.limits[0]), [Join("a"), Join("b"), Join("c")])
    assert [d.admitted for d, _ in out] == [True, True, True]
    assert (
        out[2][0].warning_codes == ("over_attendee_limit",) and out[2][1].over[0][2] == 3 and final.room.cap_exceeded
    )


def test_S2_cohosts_need_the_feature_and_members_take_the_seats():
    free = _plan(seats=1)
    out, _ = decide_all(
        _snapshot(free), [Join("c", role=Role.COHOST), Join("h", role=Role.MEMBER), Join("h2", role=Role.MEMBER)]
    )
    assert [d.reason for d, _ in out] == ["cohosts_not_available", "not_billable_member", "host_seats_full"]
    pro = _plan(seats=1, features=frozenset({"cohosts"}))
    out, final = decide_all(
        _snapshot(pro),
        [Join("h", role=Role.MEMBER), Leave("h"), Join("h2", role=Role.MEMBER), Join("c", role=Role.COHOST)],
    )
    assert [d.reason for d, _ in out] == ["not_billable_member", "left", "not_billable_member", "not_billable_member"]
    assert final.room.hosts == 1 and final.room.counted == 0


def test_G9_G10_a_subscription_that_admits_nothing_refuses_newcomers_but_not_returning_attendees():
    plan = _plan()
    out, s = decide_all(_snapshot(plan), [Join("a")])
    s = Snapshot(T0, plan, reasons.PAYMENT_OVERDUE, (), s.room, s.people)
    assert decide_join(s, Join("a"))[0].reason == "already_counted"
    assert decide_join(s, Join("b"))[0].reason == "payment_overdue"


def test_S6_live_joins_after_the_deadline_are_refused_replays_enter():
    s = Snapshot(T0, _plan(), None, (), Room("o1", deadline=T0))
    assert decide_join(s, Join("a"))[0].reason == "duration_exceeded"
    assert decide_join(s, Join("a", mode=Mode.REPLAY))[0].admitted


def test_F3_tickets_not_re_presented_in_time_lose_their_place():
    plan = _plan(Limit("attendees", 1, Policy.HARD_WITH_WAITING_ROOM))
    out, s = decide_all(_snapshot(plan, cap=plan.limits[0]), [Join("in"), Join("w1"), Join("w2"), Leave("in")])
    assert [d.position for d, _ in out[1:3]] == [1, 2]
    assert decide_join(s, Join("w2"))[0].position == 2  # w1's live ticket is ahead
    late = Snapshot(T0 + WAITING_TICKET_TTL, s.plan, None, s.limits, s.room, s.people)
    assert decide_join(late, Join("newcomer"))[0].admitted is False  # the tickets are still in the room's list ...
    fresh = Snapshot(
        late.now, s.plan, None, s.limits, s.room.__class__(**{**_room_fields(s.room), "live_tickets": ()}), s.people
    )
    assert decide_join(fresh, Join("newcomer"))[0].admitted  # ... and the service reads only live ones


def _room_fields(room: Room) -> dict:
    return {f: getattr(room, f) for f in room.__dataclass_fields__}


def test_a_failed_guard_is_decided_again_as_a_refusal_and_an_unknown_use_takes_the_unit():
    plan = _plan(Limit("credits", 3, Policy.HARD))
    s = _snapshot(plan, pool=plan.limits[0], used=None)
    decision, effects = decide_join(s, Join("a"))
    assert decision.counted and effects.take == ("credits",)
    again, nothing = decide_join(with_pool_exhausted(s, "credits"), Join("a"))
    assert (again.reason, nothing.writes) == ("credits_exhausted", False)


def test_A6_warnings_come_with_their_codes_once_the_units_are_taken():
    limit = Limit("sessions", 10, Policy.OVERAGE, Money(50, "EUR"), customer_limit=True)
    plan = _plan(limit)
    pool = Pool("sessions", MeterKind.BILLABLE_SESSIONS, pool_rule(plan, limit, MeterKind.BILLABLE_SESSIONS), 7)
    s = Snapshot(T0, plan, None, (), Room("o1"), {}, (pool,))
    out, _ = decide_all(s, [Join("a"), Join("b"), Join("c")])
    assert [d.warning_codes for d, _ in out] == [
        ("session_limit_almost_reached",),
        ("session_limit_almost_reached",),
        ("session_limit_now_reached",),
    ]
