"""The lifecycle's pure core: the state machine, plan-change timing and proration, the G11 cards."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from farebox.catalog.files import load_catalog
from farebox.kernel import reasons
from farebox.kernel.periods import period_at, utc
from farebox.kernel.reasons import DomainError
from farebox.subscriptions.domain import cards, plan_changes
from farebox.subscriptions.domain.machine import RULES, Event, allowed, step
from farebox.subscriptions.domain.states import LIVE_STATUSES, Status, Subscription, admission_refusal

NOW = utc(2026, 1, 5, 9)
AGENTS = load_catalog("agent-sessions")[0]
CAPS = load_catalog("session-caps")[0]
CREDITS = load_catalog("attendee-credits")[0]


def sub(plan, *, status=Status.ACTIVE, catalog="session-caps", anchor=NOW, **kw) -> Subscription:
    return Subscription(
        tenant_id="t", id="s", plan=plan, plan_version_id=1, catalog=catalog, status=status, anchor_at=anchor,
        period=period_at(anchor, plan.interval, anchor), starts_at=anchor, **kw,
    )


def test_every_rule_cites_a_rule_id_and_no_event_is_implicit():
    for rule in RULES:
        assert rule.rule and all(part[0] in "GSLA" for part in rule.rule.split())
    assert step(None, Event.START_TRIAL) is Status.TRIALING
    assert step(Status.TRIALING, Event.TRIAL_END) is Status.EXPIRED


@pytest.mark.parametrize("status", [Status.EXPIRED, Status.CANCELED, Status.REPLACED, Status.SCHEDULE_CANCELED])
def test_G8_ended_subscriptions_accept_no_event(status):
    for event in Event:
        assert allowed(status, event) == ()
        with pytest.raises(DomainError) as info:
            step(status, event)
        assert info.value.code == reasons.INVALID_TRANSITION.code


def test_G8_reactivate_needs_a_target_among_its_outcomes():
    with pytest.raises(DomainError):
        step(Status.CANCELLATION_SCHEDULED, Event.REACTIVATE)  # ambiguous without a target
    assert step(Status.CANCELLATION_SCHEDULED, Event.REACTIVATE, Status.PAYMENT_ISSUE) is Status.PAYMENT_ISSUE
    with pytest.raises(DomainError):
        step(Status.ACTIVE, Event.REACTIVATE, Status.ACTIVE)


def test_G9_G10_admission_refusals():
    pro = CAPS.plan("pro")
    assert admission_refusal(None, NOW) is reasons.SUBSCRIPTION_EXPIRED
    assert (
        admission_refusal(sub(pro, status=Status.EXPIRED), NOW).message()
        == "Your subscription has ended. Please upgrade your plan to continue."
    )
    grace = sub(pro, status=Status.PAYMENT_ISSUE, grace_ends_at=NOW + timedelta(days=7))
    assert admission_refusal(grace, NOW + timedelta(days=6)) is None
    assert (
        admission_refusal(grace, NOW + timedelta(days=7)).message()
        == "Your payment is overdue and the grace period has expired."
    )
    for status in LIVE_STATUSES - {Status.PAYMENT_ISSUE}:
        assert admission_refusal(sub(pro, status=status), NOW) is None


def test_G7_L9_upgrades_default_to_now_downgrades_to_period_end():
    current = sub(CAPS.plan("pro_plus"))
    assert plan_changes.is_upgrade(current, CAPS.plan("pro"), "session-caps") is False
    timing = plan_changes.resolve_when(current, upgrade=False, when=None, now=NOW)
    assert (timing.immediate, timing.starts_at) == (False, current.period.end)
    assert plan_changes.resolve_when(current, upgrade=True, when=None, now=NOW).immediate is True
    with pytest.raises(DomainError) as info:
        plan_changes.resolve_when(current, upgrade=True, when=NOW, now=NOW)
    assert info.value.code == "change_date_in_past"


def test_L11_across_catalogs_a_higher_monthly_price_is_an_upgrade():
    current = sub(CAPS.plan("pro_plus"))  # 59.00 a month
    assert (
        plan_changes.is_upgrade(current, CREDITS.plan("pro"), "attendee-credits") is True
    )  # 1188.00 a year = 99.00 a month
    assert plan_changes.is_upgrade(current, CREDITS.plan("free"), "attendee-credits") is False


def test_G7_immediate_upgrade_is_prorated_to_the_second_over_the_same_period():
    current = sub(CAPS.plan("pro"))  # 29.00 for Jan 5 - Feb 5 (31 days)
    halfway = NOW + timedelta(days=15, hours=12)
    anchor = plan_changes.new_anchor(current, CAPS.plan("pro_plus"), halfway)
    assert anchor == NOW
    money = plan_changes.proration(current, CAPS.plan("pro_plus"), halfway, anchor)
    assert (money.credit.amount_minor, money.charge.amount_minor, money.due_now.amount_minor) == (1450, 2950, 1500)
    down = plan_changes.proration(
        current, CAPS.plan("free"), halfway, plan_changes.new_anchor(current, CAPS.plan("free"), halfway)
    )
    assert down.due_now.amount_minor == 0  # no refund (G8)


def test_G11_trial_card_counts_days_and_sessions_and_warns_in_the_last_3_days_or_10_percent():
    trial = sub(
        AGENTS.plan("sme"), status=Status.TRIALING, catalog="agent-sessions", trial_ends_at=NOW + timedelta(days=14)
    )
    card = cards.subscription_card(trial, NOW)
    assert (card.badge, card.trial_days_left, card.trial_sessions_left, card.next_billing_at) == (
        "Trial subscription",
        14,
        50,
        None,
    )
    assert cards.subscription_card(trial, NOW + timedelta(days=10, hours=23)).badge == "Trial subscription"
    assert cards.subscription_card(trial, NOW + timedelta(days=11)).badge == "Trial ending soon"
    assert cards.subscription_card(replace(trial, trial_usage={"sessions": 44}), NOW).badge == "Trial subscription"
    used = cards.subscription_card(replace(trial, trial_usage={"sessions": 45}), NOW)
    assert (used.badge, used.trial_sessions_left, used.ending_soon) == ("Trial ending soon", 5, True)


def test_G11_one_badge_per_state_and_the_upcoming_card():
    pro = CAPS.plan("pro")
    end = NOW + timedelta(days=31)
    expected = {
        Status.ACTIVE: ("Active subscription", {}),
        Status.FREE: ("Active subscription", {}),
        Status.PAYMENT_ISSUE: ("Payment issue", {"grace_ends_at": end}),
        Status.CANCELLATION_SCHEDULED: ("Canceled subscription", {"cancel_effective_at": end}),
        Status.CANCELED: ("Canceled subscription", {"ended_at": end}),
        Status.EXPIRED: ("Expired subscription", {"ended_at": end}),
    }
    for status, (badge, extra) in expected.items():
        card = cards.subscription_card(sub(pro, status=status, **extra), NOW)
        assert card.badge == badge, status
    canceled = cards.subscription_card(sub(pro, status=Status.CANCELLATION_SCHEDULED, cancel_effective_at=end), NOW)
    assert (canceled.expires_at, canceled.next_billing_at) == (end, None)
    active = cards.subscription_card(sub(pro), NOW)
    assert (active.next_billing_at, active.price, active.plan_name) == (end, "29.00 USD", "Pro")
    issue = cards.subscription_card(sub(pro, status=Status.PAYMENT_ISSUE, grace_ends_at=end), NOW)
    assert issue.payment_pending is True and issue.payment_overdue is False
    upcoming = replace(sub(CAPS.plan("free"), status=Status.UPCOMING), starts_at=end)
    both = cards.cards(sub(pro), upcoming, NOW)
    assert (both.upcoming.badge, both.upcoming.starts_on, both.upcoming.plan_name) == (
        "Upcoming subscription",
        end,
        "Free",
    )


def test_docs_lifecycle_lists_every_transition_with_its_rule_ids():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "lifecycle.md").read_text()
    for r in RULES:
        source = r.source.value if r.source else "(none)"
        assert f"| {source} | `{r.event.value}` | {r.target.value} | {r.rule} |" in doc, r


def test_mrr_is_the_monthly_price_or_a_twelfth_of_the_annual_price_half_up_of_live_paid_subscriptions():
    """Audit 3.2: MRR is computed in the domain once (the console shows it)."""
    from farebox.kernel.money import Money
    from farebox.subscriptions.domain.states import monthly_recurring_revenue, mrr_totals

    sme, pro_year, free = AGENTS.plan("sme"), CREDITS.plan("pro"), CAPS.plan("free")
    assert monthly_recurring_revenue(sub(sme, catalog="agent-sessions")) == Money(15000, "EUR")
    assert pro_year.price == Money(118800, "USD")
    assert monthly_recurring_revenue(sub(pro_year, catalog="attendee-credits")) == Money(9900, "USD")
    odd = replace(pro_year, price=Money(1006, "USD"))  # 10.06 / 12 = 0.838… → 0.84
    assert monthly_recurring_revenue(sub(odd)) == Money(84, "USD")
    half = replace(pro_year, price=Money(6, "USD"))  # 0.06 / 12 = 0.005 → 0.01 (half-up)
    assert monthly_recurring_revenue(sub(half)) == Money(1, "USD")
    assert monthly_recurring_revenue(sub(free, status=Status.FREE)) is None
    assert monthly_recurring_revenue(None) is None
    for status in (Status.TRIALING, Status.EXPIRED, Status.CANCELED):
        assert monthly_recurring_revenue(sub(sme, status=status)) is None
    assert monthly_recurring_revenue(sub(sme, status=Status.PAYMENT_ISSUE)) == Money(15000, "EUR")
    assert mrr_totals([sub(sme), None, sub(pro_year), sub(sme)]) == {
        "EUR": Money(30000, "EUR"),
        "USD": Money(9900, "USD"),
    }
