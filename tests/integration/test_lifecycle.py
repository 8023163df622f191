"""The subscription lifecycle through the services, under test clocks (issue 3).

Invariant first: a tenant always has at most one live subscription, every
state change is a recorded transition with its cause (G3), and what falls due
happens at its own time when the clock moves (G2).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from farebox.clocks import service as clocks
from farebox.events import signals
from farebox.events.signals import Signal
from farebox.kernel.access import SYSTEM, Role
from farebox.kernel.periods import utc
from farebox.kernel.reasons import DomainError
from farebox.subscriptions import db as repo
from farebox.subscriptions.domain import cards as badges
from farebox.subscriptions.domain.states import Status, admission_refusal
from farebox.subscriptions.services import subscriptions

from factories import make_tenant, principal, usage_recorded

T0 = utc(2026, 1, 5, 9)
SEEN: list[Signal] = []


@signals.on()
def _record(uow, signal: Signal) -> None:
    audit_only = ("tenant.created", "tenant.clock_attached", "member.", "api_key.", "catalog.", "payment_method.")
    if not signal.kind.startswith(audit_only):
        SEEN.append(signal)


@pytest.fixture
def tenant(fb):
    """'acme' on a test clock at T0; returns a function that advances it."""
    SEEN.clear()
    clock = clocks.create(fb, SYSTEM, name="lifecycle", start=T0)
    make_tenant(fb, tenant_id="acme")
    clocks.attach(fb, SYSTEM, clock["id"], "acme")

    def advance(by: timedelta | None = None, to: datetime | None = None):
        return clocks.advance(fb, SYSTEM, clock["id"], by=by, to=to)

    return advance


def kinds(prefix: str = "") -> list[str]:
    return [s.kind for s in SEEN if s.kind.startswith(prefix) and not s.kind.startswith(("usage.", "invoice."))]


def publish(fb, kind: str, *, at: datetime, subject: str, **data) -> None:
    with fb.uow() as uow:
        signals.publish(uow, Signal(kind=kind, tenant_id="acme", at=at, actor="test", subject=subject, data=data))
        uow.commit()


def live_now(fb):
    with fb.uow(readonly=True) as uow:
        return repo.current(uow.conn, "acme")


def refusal(fb, at: datetime):
    reason = admission_refusal(live_now(fb), at)
    return reason.message() if reason else None


G10 = "Your subscription has ended. Please upgrade your plan to continue."
G9 = "Your payment is overdue and the grace period has expired."


# --- trials (A3, A4) -----------------------------------------------------------


def test_A3_trial_of_14_days_and_50_sessions_shows_on_the_card(fb, tenant):
    sub = subscriptions.subscribe(fb, SYSTEM, "acme", catalog="agent-sessions", plan="sme", trial=True)
    assert sub.status is Status.TRIALING and sub.trial_ends_at == T0 + timedelta(days=14)
    card = subscriptions.cards(fb, SYSTEM, "acme").subscription
    assert (card.badge, card.trial_days_left, card.trial_sessions_left, card.ending_soon) == (
        "Trial subscription",
        14,
        50,
        False,
    )
    assert kinds("subscription.") == ["subscription.started", "subscription.trial_started"]
    assert SEEN[1].data == {"trial_ends_at": (T0 + timedelta(days=14)).isoformat(), "usage": {"sessions": 50}}


def test_A3_seed_example_trial_ends_on_its_50th_session_before_day_14(fb, tenant):
    sub = subscriptions.subscribe(fb, SYSTEM, "acme", catalog="agent-sessions", plan="sme", trial=True)
    day5 = T0 + timedelta(days=5)
    publish(fb, "usage.recorded", at=day5, subject=sub.id, **usage_recorded(sub, 44, 45, included=50))
    card = subscriptions.cards(fb, SYSTEM, "acme").subscription
    assert (card.badge, card.trial_sessions_left) == ("Trial ending soon", 5)  # G11: last 10% of trial usage
    publish(fb, "usage.recorded", at=day5, subject=sub.id, **usage_recorded(sub, 49, 50, included=50))
    ended = live_now(fb)
    assert ended.status is Status.EXPIRED and ended.ended_at == day5
    assert refusal(fb, day5) == G10
    assert [s.data for s in SEEN if s.kind == "subscription.trial_ended"] == [
        {"cause": "usage", "to_status": "expired"}
    ]
    assert subscriptions.cards(fb, SYSTEM, "acme").subscription.badge == "Expired subscription"


def test_A3_usage_trial_exhausted_signal_ends_the_trial_now(fb, tenant):
    sub = subscriptions.subscribe(fb, SYSTEM, "acme", catalog="agent-sessions", plan="sme", trial=True)
    publish(fb, "usage.trial_exhausted", at=T0 + timedelta(days=2), subject=sub.id, meter="sessions", bound=50)
    assert live_now(fb).status is Status.EXPIRED
    publish(fb, "usage.trial_exhausted", at=T0 + timedelta(days=2), subject=sub.id, meter="sessions", bound=50)  # once
    assert kinds("subscription.trial_ended") == ["subscription.trial_ended"]


def test_A3_trial_ends_after_14_days_with_ending_soon_in_the_last_3(fb, tenant):
    subscriptions.subscribe(fb, SYSTEM, "acme", catalog="agent-sessions", plan="sme", trial=True)
    tenant(by=timedelta(days=11, hours=1))
    card = subscriptions.cards(fb, SYSTEM, "acme").subscription
    assert (card.badge, card.trial_days_left) == ("Trial ending soon", 3)
    assert refusal(fb, T0 + timedelta(days=11)) is None
    tenant(by=timedelta(days=3))
    assert live_now(fb).status is Status.EXPIRED
    assert refusal(fb, T0 + timedelta(days=15)) == G10
    assert [s.data["cause"] for s in SEEN if s.kind == "subscription.trial_ended"] == ["days"]


def test_A4_trial_is_once_per_tenant_even_after_cancelling_a_paid_plan(fb, tenant):
    subscriptions.subscribe(fb, SYSTEM, "acme", catalog="agent-sessions", plan="sme", trial=True)
    subscriptions.change_plan(fb, SYSTEM, "acme", plan="sme")  # converted to paid
    assert live_now(fb).status is Status.ACTIVE
    assert [s.data for s in SEEN if s.kind == "subscription.trial_ended"] == [
        {"cause": "converted", "to_status": "active"}
    ]
    subscriptions.cancel(fb, SYSTEM, "acme")
    tenant(by=timedelta(days=40))
    assert live_now(fb).status is Status.EXPIRED  # agent-sessions has no free plan (A4)
    with pytest.raises(DomainError) as info:
        subscriptions.subscribe(fb, SYSTEM, "acme", catalog="agent-sessions", plan="sme", trial=True)
    assert info.value.code == "trial_already_used"


def test_A3_a_plan_without_a_trial_refuses_one(fb, tenant):
    with pytest.raises(DomainError) as info:
        subscriptions.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="pro", trial=True)
    assert info.value.code == "trial_not_offered"


# --- plan changes (G7, L4, L9, L11) ------------------------------------------------


def test_G7_immediate_upgrade_keeps_the_period_and_says_upgrade_immediate(fb, tenant):
    old = subscriptions.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="pro")
    tenant(by=timedelta(days=10))
    change = subscriptions.change_plan(fb, SYSTEM, "acme", plan="pro_plus")
    new = change.subscription
    assert (change.immediate, change.upgrade, new.plan.code, new.status) == (True, True, "pro_plus", Status.ACTIVE)
    assert (new.period.start, new.period.end) == (old.period.start, old.period.end)
    [changed] = [s for s in SEEN if s.kind == "subscription.plan_changed"]
    assert changed.subject == new.id
    assert changed.data["upgrade"] is True and changed.data["immediate"] is True
    assert changed.data["from_subscription_id"] == old.id
    assert set(changed.data) == {
        "from_subscription_id", "from_plan_version_id", "to_plan_version_id", "upgrade", "immediate",
        "old_period_start", "old_period_end", "new_period_start", "new_period_end",
    }


def test_L4_upgrade_from_free_to_pro_is_immediate_upgrade_for_credit_carry_forward(fb, tenant):
    subscriptions.subscribe(fb, SYSTEM, "acme", catalog="attendee-credits", plan="free")
    subscriptions.change_plan(fb, SYSTEM, "acme", plan="pro")
    [changed] = [s for s in SEEN if s.kind == "subscription.plan_changed"]
    assert (changed.data["upgrade"], changed.data["immediate"]) == (True, True)


def test_L9_downgrade_defaults_to_period_end_as_an_upcoming_card_that_can_be_cancelled(fb, tenant):
    subscriptions.subscribe(fb, SYSTEM, "acme", catalog="attendee-credits", plan="pro")
    change = subscriptions.change_plan(fb, SYSTEM, "acme", plan="free")
    assert (change.immediate, change.upgrade) == (False, False)
    cards = subscriptions.cards(fb, SYSTEM, "acme")
    assert cards.subscription.badge == "Active subscription"
    assert (cards.upcoming.badge, cards.upcoming.plan_name, cards.upcoming.starts_on) == (
        "Upcoming subscription",
        "Free",
        utc(2027, 1, 5, 9),
    )
    subscriptions.cancel_scheduled_change(fb, SYSTEM, "acme")
    assert subscriptions.cards(fb, SYSTEM, "acme").upcoming is None
    assert kinds("subscription.plan_change") == [
        "subscription.plan_change_scheduled",
        "subscription.plan_change_canceled",
    ]
    tenant(by=timedelta(days=400))
    assert live_now(fb).plan.code == "pro"  # the called-off change never happened


def test_G7_scheduled_downgrade_starts_at_period_end_instead_of_a_renewal(fb, tenant):
    old = subscriptions.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="pro_plus")
    subscriptions.change_plan(fb, SYSTEM, "acme", plan="pro", when="end_of_period")
    SEEN.clear()
    tenant(to=old.period.end)
    now = live_now(fb)
    assert (now.plan.code, now.status, now.period.start) == ("pro", Status.ACTIVE, old.period.end)
    assert kinds("subscription.") == ["subscription.plan_changed"]  # not renewed as well
    (changed,) = [s for s in SEEN if s.kind == "subscription.plan_changed"]
    assert (changed.data["upgrade"], changed.data["immediate"]) == (False, False)


def test_G7_a_second_schedule_replaces_the_first_and_custom_dates_must_be_future(fb, tenant):
    subscriptions.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="pro_plus")
    subscriptions.change_plan(fb, SYSTEM, "acme", plan="pro")
    second = subscriptions.change_plan(fb, SYSTEM, "acme", plan="free", when=T0 + timedelta(days=10))
    assert subscriptions.cards(fb, SYSTEM, "acme").upcoming.starts_on == T0 + timedelta(days=10)
    assert second.upcoming.plan.code == "free"
    with pytest.raises(DomainError) as info:
        subscriptions.change_plan(fb, SYSTEM, "acme", plan="pro", when=T0 - timedelta(days=1))
    assert info.value.code == "change_date_in_past"
    with pytest.raises(DomainError) as info:
        subscriptions.change_plan(fb, SYSTEM, "acme", plan="pro_plus")
    assert info.value.code == "same_plan"
    tenant(by=timedelta(days=10))
    assert (live_now(fb).plan.code, live_now(fb).status) == ("free", Status.FREE)


def test_L11_preview_and_move_to_another_catalog(fb, tenant):
    subscriptions.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="pro")
    preview = subscriptions.preview_change(fb, SYSTEM, "acme", catalog="attendee-credits", plan="pro")
    assert (preview.from_catalog, preview.to_catalog, preview.upgrade, preview.default_when) == (
        "session-caps",
        "attendee-credits",
        True,
        "immediately",
    )
    assert preview.charge_minor == 118800 and preview.due_now_minor == 118800 - preview.credit_minor
    assert [lv.meter for lv in preview.limits_after] == ["credits"]
    assert live_now(fb).catalog == "session-caps"  # a preview changes nothing
    change = subscriptions.change_plan(fb, SYSTEM, "acme", catalog="attendee-credits", plan="pro")
    assert (change.subscription.catalog, change.subscription.plan.code) == ("attendee-credits", "pro")


# --- cancellation (G8, L10, S7, G14) ----------------------------------------------


def test_L10_cancel_drops_to_free_at_period_end_and_event_data_is_purged_15_days_later(fb, tenant):
    sub = subscriptions.subscribe(fb, SYSTEM, "acme", catalog="attendee-credits", plan="pro")
    cancelled = subscriptions.cancel(fb, SYSTEM, "acme")
    card = subscriptions.cards(fb, SYSTEM, "acme").subscription
    assert (card.badge, card.expires_at) == ("Canceled subscription", sub.period.end)
    assert refusal(fb, T0 + timedelta(days=100)) is None  # G8: everything works until then
    assert cancelled.cancel_effective_at == sub.period.end
    tenant(to=sub.period.end + timedelta(days=20))
    now = live_now(fb)
    assert (now.plan.code, now.status) == ("free", Status.FREE)
    [canceled] = [s for s in SEEN if s.kind == "subscription.canceled"]
    assert canceled.data == {"to": "free", "retention_until": (sub.period.end + timedelta(days=15)).isoformat()}
    [purge] = [s for s in SEEN if s.kind == "tenant.retention_purge"]
    assert (purge.subject, purge.at, purge.data) == (
        "acme",
        sub.period.end + timedelta(days=15),
        {"before": sub.period.end.isoformat()},
    )


def test_G8_reactivate_before_the_end_keeps_the_plan_renewing(fb, tenant):
    sub = subscriptions.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="pro")
    subscriptions.cancel(fb, SYSTEM, "acme")
    tenant(by=timedelta(days=5))
    assert subscriptions.reactivate(fb, SYSTEM, "acme").status is Status.ACTIVE
    tenant(to=sub.period.end)
    assert (live_now(fb).id, live_now(fb).status) == (sub.id, Status.ACTIVE)
    assert kinds("subscription.") == [
        "subscription.started",
        "subscription.cancellation_scheduled",
        "subscription.reactivated",
        "subscription.renewed",
    ]


def test_G8_A4_cancel_without_a_free_plan_expires(fb, tenant):
    sub = subscriptions.subscribe(fb, SYSTEM, "acme", catalog="agent-sessions", plan="sme")
    subscriptions.cancel(fb, SYSTEM, "acme")
    tenant(to=sub.period.end)
    assert live_now(fb).status is Status.EXPIRED
    assert refusal(fb, sub.period.end) == G10
    with pytest.raises(DomainError) as info:
        subscriptions.reactivate(fb, SYSTEM, "acme")
    assert info.value.code == "invalid_transition"


def test_S1_a_free_plan_has_nothing_to_cancel(fb, tenant):
    subscriptions.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="free")
    with pytest.raises(DomainError) as info:
        subscriptions.cancel(fb, SYSTEM, "acme")
    assert info.value.code == "invalid_transition"


# --- payment trouble (G9, A7) ---------------------------------------------------


def test_G9_failed_renewal_opens_grace_then_refuses_with_the_exact_message(fb, tenant):
    sub = subscriptions.subscribe(fb, SYSTEM, "acme", catalog="agent-sessions", plan="sme")
    failed_at = sub.period.end
    tenant(to=failed_at)
    publish(
        fb,
        "invoice.payment_failed",
        at=failed_at,
        subject="inv_1",
        subscription_id=sub.id,
        renewal=True,
        reason="card_declined",
    )
    card = subscriptions.cards(fb, SYSTEM, "acme").subscription
    assert (card.badge, card.payment_pending, card.grace_ends_at) == (
        "Payment issue",
        True,
        failed_at + timedelta(days=7),
    )
    [issue] = [s for s in SEEN if s.kind == "subscription.payment_issue"]
    assert issue.data == {"grace_ends_at": (failed_at + timedelta(days=7)).isoformat(), "invoice_id": "inv_1"}
    assert refusal(fb, failed_at + timedelta(days=6)) is None  # service continues during grace
    tenant(by=timedelta(days=7))
    assert refusal(fb, failed_at + timedelta(days=7)) == G9
    assert kinds("subscription.grace") == ["subscription.grace_expired"]
    publish(fb, "invoice.paid", at=failed_at + timedelta(days=8), subject="inv_1", subscription_id=sub.id)
    assert live_now(fb).status is Status.ACTIVE and refusal(fb, failed_at + timedelta(days=8)) is None
    assert kinds("subscription.payment_settled") == ["subscription.payment_settled"]


def test_G9_paying_within_grace_returns_to_active_and_grace_never_expires(fb, tenant):
    sub = subscriptions.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="pro")
    publish(fb, "invoice.payment_failed", at=T0, subject="inv_x", subscription_id=sub.id, renewal=False, reason="x")
    assert live_now(fb).status is Status.PAYMENT_ISSUE  # D2: a failed first invoice opens the grace as a renewal does
    publish(fb, "invoice.paid", at=T0 + timedelta(days=1), subject="inv_x", subscription_id=sub.id)
    tenant(by=timedelta(days=10))
    assert live_now(fb).status is Status.ACTIVE
    assert "subscription.grace_expired" not in kinds()


# --- access, sales, transitions (G6, S1, A5, G3) ----------------------------------------


def test_S1_A5_sales_plans_take_a_request_and_answer_request_received(fb, tenant):
    subscriptions.subscribe(fb, SYSTEM, "acme", catalog="agent-sessions", plan="sme")
    owner = principal(tenant_id="acme", role=Role.OWNER)
    request = subscriptions.request_sales_contact(fb, owner, "acme", plan="enterprise")
    assert (request.message, request.kind) == ("Request received", "book_a_demo")
    with pytest.raises(DomainError) as info:
        subscriptions.request_sales_contact(fb, owner, "acme", plan="sme")
    assert info.value.code == "not_sales_assisted"
    with pytest.raises(DomainError) as info:
        subscriptions.change_plan(fb, owner, "acme", plan="enterprise")
    assert info.value.code == "sales_assisted_plan"
    subscriptions.change_plan(fb, SYSTEM, "acme", plan="enterprise")  # the operator closes the deal


def test_G6_members_cannot_manage_billing(fb, tenant):
    member = principal(tenant_id="acme", role=Role.MEMBER)
    for call in (
        lambda: subscriptions.subscribe(fb, member, "acme", catalog="session-caps", plan="pro"),
        lambda: subscriptions.cards(fb, member, "acme"),
        lambda: subscriptions.cancel(fb, member, "acme"),
    ):
        with pytest.raises(DomainError) as info:
            call()
        assert info.value.code == "forbidden"


def test_G3_every_transition_is_recorded_with_its_cause(fb, tenant):
    subscriptions.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="pro")
    subscriptions.cancel(fb, SYSTEM, "acme")
    subscriptions.reactivate(fb, SYSTEM, "acme")
    subscriptions.change_plan(fb, SYSTEM, "acme", plan="pro_plus")
    rows = subscriptions.transitions(fb, SYSTEM, "acme")
    assert [(t.from_status, t.to_status) for t in rows] == [
        (None, "active"),
        ("active", "cancellation_scheduled"),
        ("cancellation_scheduled", "active"),
        ("active", "replaced"),
        (None, "active"),
    ]
    assert all(t.cause for t in rows)
    assert "operator:system" in rows[1].cause


def test_G11_badges_for_every_state():
    assert {
        badges.TRIAL,
        badges.TRIAL_ENDING_SOON,
        badges.ACTIVE,
        badges.PAYMENT_ISSUE,
        badges.CANCELED,
        badges.EXPIRED,
        badges.UPCOMING,
    } == {
        "Trial subscription",
        "Trial ending soon",
        "Active subscription",
        "Payment issue",
        "Canceled subscription",
        "Expired subscription",
        "Upcoming subscription",
    }


def test_G8_cancel_reactivate_cancel_again_still_takes_effect(fb, tenant):
    """Found by the stateful test: the second cancellation falls due at the same instant as the first."""
    sub = subscriptions.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="pro")
    subscriptions.cancel(fb, SYSTEM, "acme")
    subscriptions.reactivate(fb, SYSTEM, "acme")
    subscriptions.cancel(fb, SYSTEM, "acme")
    tenant(to=sub.period.end)
    assert (live_now(fb).plan.code, live_now(fb).status) == ("free", Status.FREE)


def test_G9_a_second_failure_after_settling_opens_grace_again(fb, tenant):
    sub = subscriptions.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="pro")
    publish(fb, "invoice.payment_failed", at=T0, subject="inv_a", subscription_id=sub.id, renewal=True, reason="x")
    publish(fb, "invoice.paid", at=T0, subject="inv_a", subscription_id=sub.id)
    publish(fb, "invoice.payment_failed", at=T0, subject="inv_b", subscription_id=sub.id, renewal=True, reason="x")
    tenant(by=timedelta(days=8))
    assert kinds("subscription.grace") == ["subscription.grace_expired"]
    assert refusal(fb, T0 + timedelta(days=8)) == G9


def test_G9_a_plan_change_does_not_wipe_a_failed_payment(fb, tenant):
    sub = subscriptions.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="pro_plus")
    subscriptions.change_plan(fb, SYSTEM, "acme", plan="pro", when=T0 + timedelta(days=2))
    publish(fb, "invoice.payment_failed", at=T0, subject="inv_c", subscription_id=sub.id, renewal=True, reason="x")
    with pytest.raises(DomainError) as info:
        subscriptions.change_plan(fb, SYSTEM, "acme", plan="free", when="immediately")
    assert info.value.code == "invalid_transition"
    tenant(by=timedelta(days=3))
    moved = live_now(fb)
    assert (moved.plan.code, moved.status, moved.grace_ends_at) == ("pro", Status.PAYMENT_ISSUE, T0 + timedelta(days=7))
    publish(fb, "invoice.paid", at=T0 + timedelta(days=3), subject="inv_c", subscription_id=sub.id)
    assert live_now(fb).status is Status.ACTIVE
    tenant(by=timedelta(days=10))
    assert "subscription.grace_expired" not in kinds()
