"""Voiding heals (audit #6, G9): a void publishes `invoice.voided`, is audited with who and why,
stops the invoice's dunning, and the lifecycle leaves *Payment issue* once nothing is overdue."""

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
from farebox.records.services import audit
from farebox.subscriptions.services import subscriptions

from factories import make_tenant


def _overdue_twice(fb) -> None:
    """probes/void.py: a card that declines; the first invoice and the renewal both fail."""
    make_tenant(fb, tenant_id="acme", card=FAILS_LATER)
    sub = subscriptions.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="pro", cause="test")
    fb.clock.set(sub.period.end)
    due.run_due(fb)


def test_audit6_voiding_every_overdue_invoice_leaves_payment_issue_and_admissions_are_not_refused(fb):
    _overdue_twice(fb)
    assert subscriptions.current(fb, SYSTEM, "acme").status.value == "payment_issue"
    for invoice in invoices.list_invoices(fb, SYSTEM, "acme", status="open"):
        invoices.void_invoice(fb, SYSTEM, "acme", invoice.id, reason="written off after a dispute")
    current = subscriptions.current(fb, SYSTEM, "acme")
    assert (current.status.value, current.grace_ends_at, current.overdue_invoice_id) == ("active", None, None)
    fb.clock.advance(timedelta(days=8))
    assert [p.kind for p in due.run_due(fb)] == []  # no dunning retry, no grace end left for a voided invoice
    assert admission.start_occurrence(fb, SYSTEM, "acme", "o1").admitted
    voided = [e for e in audit.entries(fb, SYSTEM, tenant_id="acme") if e["kind"] == "invoice.voided"]
    assert len(voided) == 2 and {e["actor"] for e in voided} == {"operator:system"}
    assert {e["data"]["reason"] for e in voided} == {"written off after a dispute"}


def test_audit6_voiding_one_of_two_overdue_invoices_keeps_the_grace_for_the_other(fb):
    _overdue_twice(fb)
    before = subscriptions.current(fb, SYSTEM, "acme")
    first, renewal = sorted(invoices.list_invoices(fb, SYSTEM, "acme", status="open"), key=lambda i: i.number or "")
    assert before.overdue_invoice_id == first.id  # D2: the failed first invoice opened the grace
    invoices.void_invoice(fb, SYSTEM, "acme", first.id, reason="duplicate")
    after = subscriptions.current(fb, SYSTEM, "acme")
    assert (after.status.value, after.grace_ends_at, after.overdue_invoice_id) == (
        "payment_issue",
        before.grace_ends_at,
        renewal.id,
    )
    payments.add_payment_method(fb, SYSTEM, "acme", token="4242424242424242")  # the other one paid: settled
    assert subscriptions.current(fb, SYSTEM, "acme").status.value == "active"


def test_audit6_a_void_needs_a_reason(fb):
    _overdue_twice(fb)
    invoice = invoices.list_invoices(fb, SYSTEM, "acme", status="open")[0]
    with pytest.raises(DomainError) as refused:
        invoices.void_invoice(fb, SYSTEM, "acme", invoice.id, reason="  ")
    assert refused.value.code == "validation_error"
