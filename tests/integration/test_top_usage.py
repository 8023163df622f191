"""*Largest events and conversations* sits in the *Usage this period* card: it lists the current
period only (newuser.md D19)."""

from __future__ import annotations

from datetime import timedelta

from farebox.clocks import service as clocks
from farebox.kernel.access import SYSTEM
from farebox.metering.services import admission, usage

from factories import make_tenant


def test_D19_largest_items_are_those_of_the_current_period(fb):
    clock = clocks.create(fb, SYSTEM, name="top", start=fb.clock.now())
    make_tenant(fb, tenant_id="bots")
    clocks.attach(fb, SYSTEM, clock["id"], "bots")
    from farebox.subscriptions.services import subscriptions

    subscriptions.subscribe(fb, SYSTEM, "bots", catalog="agent-sessions", plan="sme")
    for _ in range(3):  # three 24 h windows of one conversation in the first period
        admission.message(fb, SYSTEM, "bots", "old", sender="customer")
        clocks.advance(fb, SYSTEM, clock["id"], by=timedelta(hours=25))
    first = usage.top_usage(fb, SYSTEM, "bots")
    assert [(t.kind, t.id, t.units) for t in first] == [("conversation", "old", 3)]
    clocks.advance(fb, SYSTEM, clock["id"], by=timedelta(days=30))  # renewed: a new period
    admission.message(fb, SYSTEM, "bots", "new", sender="customer")
    assert [(t.kind, t.id, t.units) for t in usage.top_usage(fb, SYSTEM, "bots")] == [("conversation", "new", 1)]


def test_D19_largest_occurrences_count_each_person_once(fb):
    make_tenant(fb, tenant_id="web", catalog="attendee-credits", plan="pro")
    for person in ("a", "b", "c", "a"):
        admission.join(fb, SYSTEM, "web", "big", person)
    admission.join(fb, SYSTEM, "web", "small", "a")
    assert [(t.kind, t.id, t.units) for t in usage.top_usage(fb, SYSTEM, "web")] == [
        ("occurrence", "big", 3),
        ("occurrence", "small", 1),
    ]


def test_D19_largest_occurrences_of_a_per_session_cap_plan(fb):
    make_tenant(fb, tenant_id="caps", catalog="session-caps", plan="pro")
    admission.start_occurrence(fb, SYSTEM, "caps", "w1")
    for person in ("a", "b"):
        admission.join(fb, SYSTEM, "caps", "w1", person)
    assert [(t.kind, t.id, t.units) for t in usage.top_usage(fb, SYSTEM, "caps")] == [("occurrence", "w1", 2)]
