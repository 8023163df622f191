"""Nobody uses a paid plan without paying (D2, security F1, G9): no payment method, no paid plan;
a failed first or upgrade payment opens Payment issue and grace as a failed renewal does; a tenant
invoiced by bank transfer is never charged and its grace runs from the invoice's due date."""

from __future__ import annotations

from datetime import timedelta

import pytest

from farebox.events import due
from farebox.invoicing.services import invoices
from farebox.kernel.access import SYSTEM
from farebox.kernel.reasons import DomainError
from farebox.metering.services import admission
from farebox.payments import service as payments
from farebox.payments.providers.sandbox import FAILS_LATER
from farebox.subscriptions.services import subscriptions

from factories import make_tenant


def _refused(fn, *args, **kwargs) -> str:
    with pytest.raises(DomainError) as refused:
        fn(*args, **kwargs)
    return refused.value.code


def test_D2_F1_a_paid_plan_without_a_payment_method_is_refused_with_a_reason(fb):
    make_tenant(fb, tenant_id="acme", card=None)
    assert (
        _refused(subscriptions.subscribe, fb, SYSTEM, "acme", catalog="session-caps", plan="pro")
        == "payment_method_required"
    )
    subscriptions.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="free")  # S1: free needs no card
    for when in ("immediately", "end_of_period"):
        assert (
            _refused(subscriptions.change_plan, fb, SYSTEM, "acme", plan="pro", when=when) == "payment_method_required"
        )
    assert invoices.list_invoices(fb, SYSTEM, "acme") == []
    payments.add_payment_method(fb, SYSTEM, "acme", token="4242424242424242")
    assert subscriptions.change_plan(fb, SYSTEM, "acme", plan="pro").subscription.status.value == "active"


def test_D2_a_failed_first_payment_opens_payment_issue_and_admissions_stop_after_grace(fb):
    make_tenant(fb, tenant_id="acme", card=FAILS_LATER)  # attaches, every charge declined
    sub = subscriptions.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="pro")
    current = subscriptions.current(fb, SYSTEM, "acme")
    assert current.status.value == "payment_issue" and current.grace_ends_at == sub.starts_at + timedelta(days=7)
    assert admission.start_occurrence(fb, SYSTEM, "acme", "o1").admitted  # service during grace
    fb.clock.advance(timedelta(days=7))
    due.run_due(fb)
    assert admission.start_occurrence(fb, SYSTEM, "acme", "o2").reason == "payment_overdue"


def test_F1_a_failed_upgrade_payment_opens_payment_issue(fb):
    make_tenant(fb, tenant_id="acme", catalog="session-caps", plan="free")
    payments.add_payment_method(fb, SYSTEM, "acme", token=FAILS_LATER)
    subscriptions.change_plan(fb, SYSTEM, "acme", plan="pro", when="immediately")
    current = subscriptions.current(fb, SYSTEM, "acme")
    assert (current.plan.code, current.status.value) == ("pro", "payment_issue")
    (proration,) = invoices.list_invoices(fb, SYSTEM, "acme", status="open")
    assert current.overdue_invoice_id == proration.id


def test_D2_G9_a_tenant_invoiced_by_bank_transfer_is_never_charged_and_its_grace_runs_from_the_due_date(fb):
    make_tenant(fb, tenant_id="acme", card=None)
    payments.set_bank_transfer(fb, SYSTEM, "acme", terms_days=14)
    sub = subscriptions.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="pro")
    (invoice,) = invoices.list_invoices(fb, SYSTEM, "acme")
    assert invoice.status == "open" and payments.attempts(fb, SYSTEM, "acme", invoice.id) == []
    fb.clock.advance(timedelta(days=14))
    due.run_due(fb)
    current = subscriptions.current(fb, SYSTEM, "acme")
    assert current.status.value == "payment_issue"
    assert current.grace_ends_at == sub.starts_at + timedelta(days=14 + 7)  # G9's grace from the due date
    assert payments.attempts(fb, SYSTEM, "acme", invoice.id) == []  # still never charged
    invoices.void_invoice(fb, SYSTEM, "acme", invoice.id, reason="paid by transfer, reconciled by hand")
    assert subscriptions.current(fb, SYSTEM, "acme").status.value == "active"


def test_bank_transfer_terms_are_the_operators_to_set(fb):
    from farebox.kernel.access import Principal, Role

    make_tenant(fb, tenant_id="acme")
    owner = Principal(Role.OWNER, tenant_id="acme", key_id="k")
    assert _refused(payments.set_bank_transfer, fb, owner, "acme", terms_days=30) == "forbidden"
    assert _refused(payments.set_bank_transfer, fb, SYSTEM, "acme", terms_days=400) == "validation_error"
