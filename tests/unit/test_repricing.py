"""Repricing recorded usage under another catalog's plan (L11): pure domain rules."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from farebox.catalog.domain import MeterKind, Policy
from farebox.catalog.files import load_catalog
from farebox.kernel.periods import utc
from farebox.repricing.domain import OccurrenceUsage, PaidLine, Served, Unit, choose_plan, reprice

CREDITS, _ = load_catalog("attendee-credits")
CAPS, _ = load_catalog("session-caps")
AGENTS, _ = load_catalog("agent-sessions")
ANCHOR = utc(2026, 1, 5, 9)
A = MeterKind.ATTENDEES
S = MeterKind.BILLABLE_SESSIONS


def served(until: datetime) -> list[Served]:
    return [Served(ANCHOR, until)]


def test_L11_same_code_is_chosen_else_the_same_tier_position_clamped_to_the_top():
    assert choose_plan(CREDITS, code="pro", tier=1).code == "pro"
    assert choose_plan(CREDITS, code="sme", tier=1).code == "pro"  # agent-sessions sme is tier 1
    assert choose_plan(CREDITS, code="business", tier=3).code == "enterprise"  # above the top: the highest
    assert choose_plan(AGENTS, code="free", tier=0).code == "playground"


def test_A8_overage_is_billed_per_period_by_the_invoice_rules_in_minor_units():
    sme = AGENTS.plan("sme")
    until = utc(2026, 3, 5, 8)  # an hour before the third period
    units = [Unit(ANCHOR + timedelta(hours=h), S) for h in range(610)]  # 610 sessions in the first month
    r = reprice(sme, AGENTS.meters, anchor=ANCHOR, until=until, served=served(until), units=units)
    assert [p.period.start for p in r.periods] == [ANCHOR, utc(2026, 2, 5, 9)]
    first, second = r.periods
    assert first.usage == {"sessions": 610} and second.usage == {"sessions": 0}
    assert (first.fee_minor, first.overage_minor) == (15000, 500)  # EUR 150 + 10 x EUR 0.50
    assert (second.fee_minor, second.overage_minor) == (15000, 0)
    assert r.would_pay_minor == 30500 and r.currency == "EUR"
    assert not r.hit_periods  # overage never refuses


def test_L7_a_hard_pool_refuses_every_unit_beyond_the_included_ones():
    free = CREDITS.plan("free")  # 30 credits a year, hard
    until = utc(2026, 6, 1)
    units = [Unit(ANCHOR + timedelta(days=1), A, units=40)]
    r = reprice(free, CREDITS.meters, anchor=ANCHOR, until=until, served=served(until), units=units)
    (period,) = r.periods
    assert not period.complete and period.fee_minor == 0
    (hit,) = period.hits
    assert (hit.meter, hit.policy, hit.included, hit.reached, hit.refused) == ("credits", Policy.HARD, 30, 40, 10)


def test_S5_occurrence_caps_soft_refuse_nobody_but_mark_the_overrun():
    pro = CAPS.plan("pro")  # 500 attendees per occurrence, soft
    until = utc(2026, 2, 5, 8)
    occurrences = [
        OccurrenceUsage(ANCHOR + timedelta(days=2), 620, 400),
        OccurrenceUsage(ANCHOR + timedelta(days=3), 100, 90),
    ]
    r = reprice(pro, CAPS.meters, anchor=ANCHOR, until=until, served=served(until), occurrences=occurrences)
    (period,) = r.periods
    (hit,) = period.hits
    assert (hit.meter, hit.refused, hit.occurrences, hit.reached) == ("attendees", 0, 1, 620)
    assert period.occurrences == 2 and period.highest == {"attendees": 620}  # Pro caps attendees, not concurrent ones
    assert "upgrade required" in hit.describe()
    business = CAPS.plan("business")  # 3,000 concurrent: the peak counts, not the unique attendees
    r = reprice(
        business,
        CAPS.meters,
        anchor=ANCHOR,
        until=until,
        served=served(until),
        occurrences=[OccurrenceUsage(ANCHOR, 5000, 2999)],
    )
    assert not r.hit_periods


def test_G13_what_was_invoiced_is_attributed_to_the_period_of_its_service_start_and_compared():
    pro = CAPS.plan("pro")
    until = utc(2026, 3, 5, 8)  # an hour before the third period
    paid = [
        PaidLine(ANCHOR, 118800, "USD"),
        PaidLine(ANCHOR - timedelta(days=1), 999, "USD"),
    ]  # before the anchor: not replayed
    r = reprice(pro, CAPS.meters, anchor=ANCHOR, until=until, served=served(until), paid=paid)
    assert [dict(p.paid) for p in r.periods] == [{"USD": 118800}, {}]
    assert r.would_pay_minor == 2 * 2900 and r.change_minor == 5800 - 118800
    eur = reprice(AGENTS.plan("sme"), AGENTS.meters, anchor=ANCHOR, until=until, served=served(until), paid=paid)
    assert eur.change_minor is None  # paid in USD, would pay in EUR: no difference is made up


def test_G8_periods_outside_served_time_bill_no_fee_and_since_skips_earlier_periods():
    pro = CAPS.plan("pro")
    until = utc(2026, 5, 5, 8)
    r = reprice(pro, CAPS.meters, anchor=ANCHOR, until=until, served=[Served(ANCHOR, utc(2026, 2, 1))])
    assert [p.fee_minor for p in r.periods] == [2900, 0, 0, 0]
    later = reprice(pro, CAPS.meters, anchor=ANCHOR, until=until, since=utc(2026, 3, 10), served=served(until))
    assert [p.period.start for p in later.periods] == [utc(2026, 3, 5, 9), utc(2026, 4, 5, 9)]


offsets = st.lists(st.tuples(st.integers(0, 400 * 24), st.sampled_from([A, S]), st.integers(1, 5)), max_size=60)


@settings(max_examples=60, deadline=None)
@given(
    offsets,
    st.sampled_from(
        [
            ("agent-sessions", "sme"),
            ("attendee-credits", "free"),
            ("attendee-credits", "enterprise"),
            ("agent-sessions", "playground"),
        ]
    ),
    st.integers(0, 24 * 30),
)
def test_L11_property_every_unit_is_counted_once_and_charges_follow_the_limits(rows, which, extra_hours):
    """Units in the replayed window are conserved across periods; overage is the unit price times the
    excess of each period; a hard limit refuses exactly the excess; adding usage never lowers the bill."""
    catalog = {"agent-sessions": AGENTS, "attendee-credits": CREDITS}[which[0]]
    plan = catalog.plan(which[1])
    until = ANCHOR + timedelta(days=400)
    units = [Unit(ANCHOR + timedelta(hours=h), kind, n) for h, kind, n in rows]
    r = reprice(plan, catalog.meters, anchor=ANCHOR, until=until, served=served(until), units=units)
    (key,) = [k for k, m in catalog.meters.items()]
    kind = catalog.meters[key].kind
    assert sum(p.usage[key] for p in r.periods) == sum(u.units for u in units if u.kind is kind)
    limit = plan.limit(key)
    assert limit is not None and limit.included is not None
    for p in r.periods:
        excess = max(0, p.usage[key] - limit.included)
        if limit.policy is Policy.OVERAGE:
            assert limit.overage_unit_price is not None
            assert p.overage_minor == excess * limit.overage_unit_price.amount_minor and not p.hits
        else:
            assert p.overage_minor == 0
            assert sum(h.refused for h in p.hits) == excess
    more = reprice(
        plan,
        catalog.meters,
        anchor=ANCHOR,
        until=until,
        served=served(until),
        units=[*units, Unit(ANCHOR + timedelta(hours=extra_hours), kind)],
    )
    assert more.would_pay_minor >= r.would_pay_minor
    assert sum(h.refused for p in more.periods for h in p.hits) >= sum(h.refused for p in r.periods for h in p.hits)
