"""The Billing tab's figures, warnings and messages come from the services and the domain, once (audit 3.2)."""

from __future__ import annotations

from datetime import timedelta

from farebox.entrypoints.portal import billing_view
from farebox.kernel.access import SYSTEM
from farebox.metering.domain.pools import ALMOST_REACHED, REACHED
from farebox.metering.services import admission, usage
from farebox.subscriptions.services import subscriptions

from factories import make_tenant


def test_G10_a_trial_past_its_end_shows_the_message_admissions_answer_before_its_due_item_ran(fb, clock):
    """The due item that ends the trial has not run yet: admissions already refuse, so the page says so too."""
    make_tenant(fb, tenant_id="agents")
    subscriptions.subscribe(fb, SYSTEM, "agents", catalog="agent-sessions", plan="sme", trial=True)
    clock.advance(timedelta(days=15))  # no worker pass: the trial's due item is still pending
    refused = admission.message(fb, SYSTEM, "agents", "c1", sender="customer")
    assert not refused.admitted
    page = billing_view.build(fb, SYSTEM, "agents")
    assert page.refusal_message == refused.message


def test_G9_G10_a_live_subscription_shows_no_refusal(fb):
    make_tenant(fb, tenant_id="agents", catalog="agent-sessions", plan="sme")
    assert admission.message(fb, SYSTEM, "agents", "c1", sender="customer").admitted
    assert billing_view.build(fb, SYSTEM, "agents").refusal_message is None


def test_A6_the_limit_cards_warning_is_the_one_usage_reports(fb):
    make_tenant(fb, tenant_id="agents", catalog="agent-sessions", plan="sme")
    usage.set_session_limit(fb, SYSTEM, "agents", 5)
    shown = []
    for i in range(5):
        admission.message(fb, SYSTEM, "agents", f"c{i}", sender="customer")
        card = billing_view.build(fb, SYSTEM, "agents").limit_card
        assert card is not None
        reported = usage.usage_summary(fb, SYSTEM, "agents").meter("sessions").warnings
        assert (card.warning,) == reported if reported else card.warning is None
        shown.append(card.warning)
    assert shown == [None, None, None, ALMOST_REACHED, REACHED]
