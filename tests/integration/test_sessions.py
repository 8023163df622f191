"""Billable conversation sessions through the services (A1, A2, A3, A6, A8)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from farebox.events import signals
from farebox.events.signals import Signal
from farebox.kernel.access import SYSTEM, Role
from farebox.kernel.reasons import DomainError
from farebox.metering.services import admission, usage
from farebox.storage.tables.subscriptions import subscriptions
from farebox.subscriptions import db as subs_repo

from factories import make_tenant, principal
from metering_support import shrink


def _sub(fb, tenant_id):
    with fb.uow(readonly=True) as uow:
        return subs_repo.current(uow.conn, tenant_id)


def test_A1_seed_a_36_hour_conversation_is_one_conversation_and_two_billable_sessions(fb, clock):
    make_tenant(fb, tenant_id="a1", catalog="agent-sessions", plan="sme")
    decisions = []
    for _ in range(0, 37, 6):
        decisions.append(admission.message(fb, SYSTEM, "a1", "conv", sender="customer"))
        clock.advance(timedelta(hours=6))
    assert sum(d.counted for d in decisions) == 2
    assert [d.reason for d in decisions[:2]] == ["admitted", "window_open"]
    assert usage.usage_summary(fb, SYSTEM, "a1").meter("sessions").used == 2
    top = usage.top_usage(fb, SYSTEM, "a1")
    assert [(t.kind, t.id, t.units) for t in top] == [("conversation", "conv", 2)]
    assert usage.verify(fb, SYSTEM) == []


def test_A2_an_outbound_only_window_on_an_answered_only_plan_is_free(fb, clock):
    make_tenant(fb, tenant_id="a2", catalog="agent-sessions", plan="sme_answered")
    out = admission.message(fb, SYSTEM, "a2", "c1", sender="agent")
    again = admission.message(fb, SYSTEM, "a2", "c1", sender="agent")
    assert (out.admitted, out.counted, out.reason) == (True, False, "not_billable_outbound")
    assert (again.counted, again.reason) == (False, "window_open")
    assert usage.usage_summary(fb, SYSTEM, "a2").meter("sessions").used == 0
    reply = admission.message(fb, SYSTEM, "a2", "c1", sender="customer")  # the customer answers: the window is billed
    assert reply.counted and usage.usage_summary(fb, SYSTEM, "a2").meter("sessions").used == 1
    clock.advance(timedelta(hours=25))
    assert admission.message(fb, SYSTEM, "a2", "c1", sender="agent").counted is False


def test_A6_session_limit_warns_at_80_and_refuses_new_sessions_at_100_then_reset(fb, clock):
    seen = []
    signals.on("usage.session_limit_changed")(lambda uow, s: seen.append(s))
    make_tenant(fb, tenant_id="a6", catalog="agent-sessions", plan="sme")
    changed = usage.set_session_limit(fb, SYSTEM, "a6", 5)
    assert (changed.before, changed.after, changed.base) == (None, 5, 600)
    assert [s.data for s in seen if s.tenant_id == "a6"] == [{"before": None, "after": 5}]
    answers = [admission.message(fb, SYSTEM, "a6", f"c{i}", sender="customer") for i in range(5)]
    assert answers[3].warnings == ("Session limit almost reached",)
    assert answers[4].warnings == ("Session limit has been reached",)
    refused = admission.message(fb, SYSTEM, "a6", "c9", sender="customer")
    assert (refused.admitted, refused.reason, refused.message) == (
        False,
        "session_limit_reached",
        "Session limit has been reached.",
    )
    # a new window of an open conversation is a new session too
    clock.advance(timedelta(hours=25))
    assert admission.message(fb, SYSTEM, "a6", "c0", sender="customer").reason == "session_limit_reached"
    summary = usage.usage_summary(fb, SYSTEM, "a6").meter("sessions")
    assert (summary.used, summary.limit, summary.left, summary.percent, summary.session_limit) == (5, 5, 0, 100, 5)
    usage.reset_session_limit(fb, SYSTEM, "a6")
    assert admission.message(fb, SYSTEM, "a6", "c9", sender="customer").counted


def test_A6_session_limit_must_be_positive_owner_or_admin_and_not_on_free_or_trial(fb):
    make_tenant(fb, tenant_id="a6v", catalog="agent-sessions", plan="sme")
    for bad in (0, -3):
        with pytest.raises(DomainError) as err:
            usage.set_session_limit(fb, SYSTEM, "a6v", bad)
        assert err.value.code == "session_limit_invalid"
    with pytest.raises(DomainError) as err:
        usage.set_session_limit(fb, principal(tenant_id="a6v", role=Role.MEMBER), "a6v", 10)
    assert err.value.code == "forbidden"
    make_tenant(fb, tenant_id="a6f", catalog="agent-sessions", plan="playground")
    with pytest.raises(DomainError) as err:
        usage.set_session_limit(fb, SYSTEM, "a6f", 10)
    assert err.value.code == "session_limit_not_available"


def test_A8_sme_goes_past_600_and_the_excess_is_overage(fb):
    make_tenant(fb, tenant_id="a8", catalog="agent-sessions", plan="sme")
    shrink(fb, "a8", "sessions", 3, policy="overage", )
    answers = [admission.message(fb, SYSTEM, "a8", f"c{i}", sender="customer") for i in range(5)]
    assert all(a.counted for a in answers)
    sessions = usage.usage_summary(fb, SYSTEM, "a8").meter("sessions")
    assert (sessions.used, sessions.overage) == (5, 2)


def test_A3_trial_bound_refuses_with_trial_exhausted_and_publishes_once(fb):
    seen = []
    signals.on("usage.trial_exhausted")(lambda uow, s: seen.append(s))
    make_tenant(fb, tenant_id="a3", catalog="agent-sessions", plan="sme")
    sub = _sub(fb, "a3")
    with fb.uow() as uow:
        uow.conn.execute(
            update(subscriptions)
            .where(subscriptions.c.id == sub.id)
            .values(status="trialing", trial_ends_at=fb.clock.now() + timedelta(days=14))
        )
        uow.commit()
    answers = [admission.message(fb, SYSTEM, "a3", f"c{i}", sender="customer") for i in range(52)]
    assert sum(a.counted for a in answers) == 50
    assert (answers[50].reason, answers[51].reason) == ("trial_exhausted", "trial_exhausted")
    assert [s.data for s in seen if s.tenant_id == "a3"] == [{"meter": "sessions", "bound": 50}]
    assert usage.usage_summary(fb, SYSTEM, "a3").meter("sessions").limit == 50


def test_G4_usage_recorded_only_when_a_period_total_changes(fb):
    seen = []
    signals.on("usage.recorded")(lambda uow, s: seen.append(s))
    make_tenant(fb, tenant_id="g4", catalog="agent-sessions", plan="sme")
    admission.message(fb, SYSTEM, "g4", "c1", sender="customer")
    admission.message(fb, SYSTEM, "g4", "c1", sender="agent")
    mine = [s for s in seen if s.tenant_id == "g4"]
    assert len(mine) == 1
    assert {k: mine[0].data[k] for k in ("meter", "before", "after", "included")} == {
        "meter": "sessions",
        "before": 0,
        "after": 1,
        "included": 600,
    }
    assert set(mine[0].data) == {"meter", "before", "after", "included", "limit", "trial", "period_start", "period_end"}
    assert (mine[0].data["limit"], mine[0].data["trial"]) == (600, False)


def test_L4_an_upgrade_carries_the_remaining_credits_forward(fb):
    """L4: an immediate upgrade through the lifecycle service carries the unused credits into the new plan."""
    from farebox.subscriptions.services import subscriptions as subscription_service

    make_tenant(fb, tenant_id="l4", catalog="attendee-credits", plan="pro")
    shrink(fb, "l4", "credits", 10)
    for i in range(4):
        admission.join(fb, SYSTEM, "l4", "o1", f"p{i}")
    subscription_service.change_plan(fb, SYSTEM, "l4", plan="enterprise", when="immediately")
    assert _sub(fb, "l4").plan.code == "enterprise"
    credits = usage.usage_summary(fb, SYSTEM, "l4").meter("credits")
    assert (credits.used, credits.carried_in, credits.included) == (0, 6, 10006)
    assert admission.join(fb, SYSTEM, "l4", "o1", "p0").reason == "already_counted"  # running occurrences go on


def test_G14_retention_purge_deletes_event_data_and_keeps_counters(fb, clock):
    make_tenant(fb, tenant_id="g14", catalog="attendee-credits", plan="pro")
    admission.join(fb, SYSTEM, "g14", "o1", "alice")
    admission.message(fb, SYSTEM, "g14", "c1", sender="customer")
    clock.advance(timedelta(days=30))
    with fb.uow() as uow:
        signals.publish(
            uow, Signal("tenant.retention_purge", "g14", clock.now(), subject="g14", data={"before": clock.now()})
        )
        uow.commit()
    assert usage.top_usage(fb, SYSTEM, "g14") == []
    assert usage.usage_summary(fb, SYSTEM, "g14").meter("credits").used == 1
    assert usage.verify(fb, SYSTEM) == []


def test_daily_usage_counts_per_day(fb, clock):
    make_tenant(fb, tenant_id="du", catalog="attendee-credits", plan="pro")
    admission.join(fb, SYSTEM, "du", "o1", "a")
    admission.join(fb, SYSTEM, "du", "o1", "b")
    clock.advance(timedelta(days=1))
    admission.join(fb, SYSTEM, "du", "o2", "a")
    days = usage.daily_usage(fb, SYSTEM, "du")
    assert [(d.day.isoformat(), d.units) for d in days] == [("2026-01-05", 2), ("2026-01-06", 1)]
