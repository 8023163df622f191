"""The words of answers and refusals say what happened (newuser.md D15)."""

from __future__ import annotations

import pytest

from farebox.invoicing.services import invoices
from farebox.kernel.access import SYSTEM
from farebox.kernel.reasons import DomainError
from farebox.metering.services import admission

from factories import make_tenant


def test_D15_voiding_a_paid_invoice_says_only_an_open_one_can_be_voided(fb):
    make_tenant(fb, tenant_id="v1", catalog="session-caps", plan="pro")
    paid = invoices.list_invoices(fb, SYSTEM, "v1")[0]
    assert paid.status == "paid"
    with pytest.raises(DomainError) as refused:
        invoices.void_invoice(fb, SYSTEM, "v1", paid.id, reason="issued by mistake")
    assert refused.value.code == "invoice_not_open"
    assert refused.value.refusal.message == "This invoice is paid; only an open invoice can be voided."


def test_D15_ending_an_occurrence_answers_occurrence_ended_not_duration_exceeded(fb):
    make_tenant(fb, tenant_id="e1", catalog="session-caps", plan="pro")
    admission.start_occurrence(fb, SYSTEM, "e1", "o1")
    admission.join(fb, SYSTEM, "e1", "o1", "p1")
    ended = admission.end_occurrence(fb, SYSTEM, "e1", "o1")
    assert (ended.admitted, ended.reason) == (False, "occurrence_ended")
    assert ended.message == "The occurrence has ended; everyone in it was removed."
    assert admission.join(fb, SYSTEM, "e1", "o1", "p2").admitted is False
