"""Refusals read as sentences a customer understands (newuser.md D15)."""

from __future__ import annotations

import pytest

from farebox.kernel.reasons import DomainError
from farebox.subscriptions.domain.machine import Event, step
from farebox.subscriptions.domain.states import Status


def test_D15_an_invalid_transition_names_no_internal_state_and_has_no_bad_article():
    with pytest.raises(DomainError) as active:
        step(Status.ACTIVE, Event.REACTIVATE)
    assert active.value.refusal.message == "This subscription is active, so it cannot be reactivated."
    with pytest.raises(DomainError) as scheduled:
        step(Status.CANCELLATION_SCHEDULED, Event.CANCEL)
    message = scheduled.value.refusal.message
    assert "cancellation_scheduled" not in message and "_" not in message
    assert message == "This subscription is already set to end with its current period, so it cannot be cancelled."


def test_D15_every_refused_transition_reads_without_underscores():
    for status in list(Status) + [None]:
        for event in Event:
            try:
                step(status, event)
            except DomainError as exc:
                assert "_" not in exc.refusal.message and " A a" not in exc.refusal.message, exc.refusal.message
