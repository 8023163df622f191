"""Admission through the services: who enters, what is counted, what is refused (S4-S6, L1-L8, G5, G9, G10)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from farebox.events import signals
from farebox.kernel.access import SYSTEM
from farebox.metering.services import admission, usage
from farebox.storage.tables.subscriptions import subscriptions
from farebox.subscriptions.services import subscriptions as plans

from factories import make_tenant
from metering_support import shrink


def _joins(fb, tenant, occurrence, people, **kw):
    return [admission.join(fb, SYSTEM, tenant, occurrence, p, **kw) for p in people]


def test_L2_seed_five_occurrences_of_one_hundred_attendees_use_500_credits(fb):
    make_tenant(fb, tenant_id="ls", catalog="attendee-credits", plan="pro")
    for n in range(5):
        decisions = _joins(fb, "ls", f"occ-{n}", [f"p{n}-{i}" for i in range(100)])
        assert all(d.admitted and d.counted for d in decisions)
    summary = usage.usage_summary(fb, SYSTEM, "ls")
    assert summary.meter("credits").used == 500
    assert usage.verify(fb, SYSTEM) == []


def test_L2_live_then_replay_is_one_credit_and_rejoin_is_free(fb):
    make_tenant(fb, tenant_id="lr", catalog="attendee-credits", plan="pro")
    first = admission.join(fb, SYSTEM, "lr", "o1", "alice", mode="live")
    again = admission.join(fb, SYSTEM, "lr", "o1", "alice", mode="live")
    replay = admission.join(fb, SYSTEM, "lr", "o1", "alice", mode="replay")
    assert (first.counted, first.reason) == (True, "admitted")
    assert (again.admitted, again.counted, again.reason) == (True, False, "already_counted")
    assert (replay.admitted, replay.counted) == (True, False)
    assert usage.usage_summary(fb, SYSTEM, "lr").meter("credits").used == 1


def test_G5_S4_members_cohosts_and_registrations_never_count(fb):
    make_tenant(fb, tenant_id="gm", catalog="session-caps", plan="pro")
    admission.start_occurrence(fb, SYSTEM, "gm", "o1")
    member = admission.join(fb, SYSTEM, "gm", "o1", "host", role="member")
    cohost = admission.join(fb, SYSTEM, "gm", "o1", "co", role="cohost")
    reg = admission.register(fb, SYSTEM, "gm", "o1", "visitor")
    assert (member.admitted, member.counted, member.reason) == (True, False, "not_billable_member")
    assert (cohost.admitted, cohost.counted) == (True, False)
    assert (reg.admitted, reg.counted, reg.reason) == (True, False, "registered")
    assert usage.usage_summary(fb, SYSTEM, "gm").meter("attendees").used == 0
    assert admission.join(fb, SYSTEM, "gm", "o1", "visitor").counted is True


def test_S6_start_returns_deadline_and_later_live_join_is_duration_exceeded(fb, clock):
    make_tenant(fb, tenant_id="sd", catalog="session-caps", plan="free")
    started = admission.start_occurrence(fb, SYSTEM, "sd", "o1")
    assert started.admitted and started.deadline == clock.now() + timedelta(minutes=90)
    clock.advance(timedelta(minutes=91))
    late = admission.join(fb, SYSTEM, "sd", "o1", "bob", mode="live")
    assert (late.admitted, late.reason) == (False, "duration_exceeded")
    replay = admission.join(fb, SYSTEM, "sd", "o1", "bob", mode="replay")
    assert replay.admitted and replay.counted


def test_S6_clock_starts_at_first_entry(fb, clock):
    make_tenant(fb, tenant_id="sf", catalog="session-caps", plan="pro")
    clock.advance(timedelta(hours=1))
    first = admission.join(fb, SYSTEM, "sf", "o1", "p1")
    assert first.deadline == clock.now() + timedelta(hours=4)


def test_S6_ending_soon_signal_and_everyone_removed_at_the_deadline(fb, clock):
    from farebox.clocks import service as clocks

    seen = []
    signals.on("occurrence.ending_soon")(lambda uow, s: seen.append(s))
    tc = clocks.create(fb, SYSTEM, name="t", start=clock.now())
    make_tenant(fb, tenant_id="se", catalog="session-caps", plan="free")
    clocks.attach(fb, SYSTEM, tc["id"], "se")
    started = admission.start_occurrence(fb, SYSTEM, "se", "o1")
    admission.join(fb, SYSTEM, "se", "o1", "p1")
    clocks.advance(fb, SYSTEM, tc["id"], by=timedelta(minutes=85))
    mine = [s for s in seen if s.tenant_id == "se"]
    assert len(mine) == 1 and mine[0].data["minutes_left"] == 10 and mine[0].data["deadline"] == started.deadline
    clocks.advance(fb, SYSTEM, tc["id"], by=timedelta(minutes=5))
    assert admission.join(fb, SYSTEM, "se", "o1", "p1", mode="live").reason == "duration_exceeded"


def test_L7_at_the_credit_limit_returning_attendee_enters_new_one_refused_registration_works(fb):
    make_tenant(fb, tenant_id="lk", catalog="attendee-credits", plan="pro")
    shrink(fb, "lk", "credits", 3)
    assert all(d.counted for d in _joins(fb, "lk", "o1", ["a", "b", "c"]))
    new = admission.join(fb, SYSTEM, "lk", "o1", "d")
    assert (new.admitted, new.reason) == (False, "credits_exhausted") and new.message
    back = admission.join(fb, SYSTEM, "lk", "o1", "a", mode="replay")
    assert (back.admitted, back.counted, back.reason) == (True, False, "already_counted")
    assert admission.register(fb, SYSTEM, "lk", "o2", "e").admitted
    assert admission.join(fb, SYSTEM, "lk", "o2", "team", role="member").admitted
    assert usage.usage_summary(fb, SYSTEM, "lk").meter("credits").used == 3


def test_L3_the_pool_is_shared_by_every_occurrence(fb):
    make_tenant(fb, tenant_id="lp", catalog="attendee-credits", plan="pro")
    shrink(fb, "lp", "credits", 2)
    assert admission.join(fb, SYSTEM, "lp", "o1", "a").counted
    assert admission.join(fb, SYSTEM, "lp", "o2", "a").counted  # another occurrence: counted again
    assert admission.join(fb, SYSTEM, "lp", "o3", "b").reason == "credits_exhausted"


def test_L8_enterprise_goes_past_its_pool_and_the_excess_is_overage(fb):
    make_tenant(fb, tenant_id="le", catalog="attendee-credits", plan="enterprise")
    shrink(fb, "le", "credits", 2, policy="overage")
    assert all(d.admitted and d.counted for d in _joins(fb, "le", "o1", ["a", "b", "c", "d", "e"]))
    summary = usage.usage_summary(fb, SYSTEM, "le")
    credits = summary.meter("credits")
    assert (credits.used, credits.included, credits.overage) == (5, 2, 3)
    with fb.uow(readonly=True) as uow:
        assert usage.overage_usage(
            uow.subscriptions, uow.metering, "le", summary.subscription_id, summary.period_start, summary.period_end
        ) == {"credits": 3}
        assert usage.billable_usage(
            uow.conn, "le", summary.subscription_id, summary.period_start, summary.period_end
        ) == {"credits": 5}


def test_S5_soft_cap_blocks_nobody_tells_host_once_and_requires_upgrade(fb):
    seen = []
    signals.on("usage.cap_exceeded")(lambda uow, s: seen.append(s))
    make_tenant(fb, tenant_id="ss", catalog="session-caps", plan="pro")
    shrink(fb, "ss", "attendees", 2)
    admission.start_occurrence(fb, SYSTEM, "ss", "o1")
    decisions = _joins(fb, "ss", "o1", ["a", "b", "c", "d"])
    assert all(d.admitted and d.counted for d in decisions)
    assert decisions[2].warnings and not decisions[1].warnings
    mine = [s for s in seen if s.tenant_id == "ss"]
    assert len(mine) == 1 and mine[0].data == {"meter": "attendees", "limit": 2, "count": 3, "policy": "soft"}
    refused = admission.start_occurrence(fb, SYSTEM, "ss", "o2")
    assert (refused.admitted, refused.reason) == (False, "upgrade_required")
    # S5: an upgrade through change_plan whose cap (Pro Plus, 1,000) covers the peak of 4 lifts it (T1).
    change = plans.change_plan(fb, SYSTEM, "ss", plan="pro_plus")
    assert (change.immediate, change.upgrade) == (True, True)
    assert admission.start_occurrence(fb, SYSTEM, "ss", "o2").admitted


def test_S5_audit_4_an_upgrade_below_the_peak_keeps_upgrade_required(fb):
    """S5 (audit #4, T1): Pro's cap 2 went to a peak of 4; Pro Plus at 3 still does not cover it."""
    make_tenant(fb, tenant_id="su", catalog="session-caps", plan="pro")
    shrink(fb, "su", "attendees", 2, others={"pro_plus": 3})
    admission.start_occurrence(fb, SYSTEM, "su", "o1")
    assert all(d.admitted for d in _joins(fb, "su", "o1", ["a", "b", "c", "d"]))
    assert admission.start_occurrence(fb, SYSTEM, "su", "o2").reason == "upgrade_required"
    assert plans.change_plan(fb, SYSTEM, "su", plan="pro_plus").upgrade
    assert admission.start_occurrence(fb, SYSTEM, "su", "o2").reason == "upgrade_required"
    # The flag still names the peak: a plan without a cap on that meter covers it.
    assert plans.change_plan(fb, SYSTEM, "su", plan="business").upgrade
    assert admission.start_occurrence(fb, SYSTEM, "su", "o2").reason == "started"


def test_S5_hard_cap_with_waiting_room_admits_when_someone_leaves(fb):
    make_tenant(fb, tenant_id="sw", catalog="session-caps", plan="pro")
    shrink(fb, "sw", "attendees", 2, policy="hard_with_waiting_room")
    assert all(d.admitted for d in _joins(fb, "sw", "o1", ["a", "b"]))
    c = admission.join(fb, SYSTEM, "sw", "o1", "c")
    d = admission.join(fb, SYSTEM, "sw", "o1", "d")
    assert (c.admitted, c.reason, c.position) == (False, "waiting_room", 1)
    assert d.position == 2
    admission.leave(fb, SYSTEM, "sw", "o1", "a")
    assert admission.join(fb, SYSTEM, "sw", "o1", "d").position == 2  # d is not first
    assert admission.join(fb, SYSTEM, "sw", "o1", "c").admitted
    assert admission.join(fb, SYSTEM, "sw", "o1", "d").position == 1


def test_S5_hard_cap_refuses_at_the_cap(fb):
    make_tenant(fb, tenant_id="sh", catalog="session-caps", plan="pro")
    shrink(fb, "sh", "attendees", 1, policy="hard")
    assert admission.join(fb, SYSTEM, "sh", "o1", "a").admitted
    refused = admission.join(fb, SYSTEM, "sh", "o1", "b")
    assert (refused.admitted, refused.reason) == (False, "attendee_cap_reached") and "1" in refused.message


def test_G10_no_subscription_refuses_and_G9_grace_expired_refuses(fb, clock):
    make_tenant(fb, tenant_id="gx")
    assert admission.join(fb, SYSTEM, "gx", "o1", "a").reason == "subscription_expired"
    assert (
        admission.message(fb, SYSTEM, "gx", "c1", sender="customer").message
        == "Your subscription has ended. Please upgrade your plan to continue."
    )
    make_tenant(fb, tenant_id="gp", catalog="agent-sessions", plan="sme")
    with fb.uow() as uow:
        uow.conn.execute(
            update(subscriptions)
            .where(subscriptions.c.tenant_id == "gp")
            .values(status="payment_issue", grace_ends_at=clock.now() + timedelta(days=7))
        )
        uow.commit()
    assert admission.message(fb, SYSTEM, "gp", "c1", sender="customer").admitted  # in grace: service continues
    clock.advance(timedelta(days=7))
    overdue = admission.message(fb, SYSTEM, "gp", "c2", sender="customer")
    assert (overdue.admitted, overdue.reason, overdue.message) == (
        False,
        "payment_overdue",
        "Your payment is overdue and the grace period has expired.",
    )


def test_validation_of_mode_and_role(fb):
    from farebox.kernel.reasons import DomainError

    make_tenant(fb, tenant_id="vv", catalog="session-caps", plan="pro")
    with pytest.raises(DomainError):
        admission.join(fb, SYSTEM, "vv", "o1", "a", mode="teleport")
