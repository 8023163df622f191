"""The pure invoice computation: fees in advance, proration to the second, overage, totals (G1, G7, G13, L8, A8)."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from farebox.catalog.domain import Limit, Plan, Policy
from farebox.invoicing.domain.charges import (
    Charge,
    Document,
    LineKind,
    Segment,
    document_for,
    fee_charge,
    invoice_number,
    number_series,
    overage_charges,
    plan_change_charges,
    recompute,
    segment_amount,
    settle_with_credit,
    split_refund,
    totals,
)
from farebox.kernel.money import Money
from farebox.kernel.periods import Interval, Period, utc

JAN = Period(utc(2026, 1, 1), utc(2026, 2, 1), 0)  # 31 days
APR = Period(utc(2026, 4, 1), utc(2026, 5, 1), 0)  # 30 days


def plan(code: str, price: str, currency: str = "USD", *, limits: tuple[Limit, ...] = (), tier: int = 1) -> Plan:
    return Plan(
        code=code,
        name=code.title(),
        price=Money.parse(price, currency),
        interval=Interval.MONTH,
        tier=tier,
        limits=limits,
    )


PRO = plan("pro", "29.00")
PRO_PLUS = plan("pro_plus", "59.00", tier=2)
SME = plan("sme", "150.00", "EUR", limits=(Limit("sessions", 600, Policy.OVERAGE, Money.parse("0.50", "EUR")),))


def whole(p: Plan, period: Period, sub: str = "sub_1", version: int = 1) -> Segment:
    return Segment(sub, version, p, period, period.start, period.end)


def billed(charges: list[Charge]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in charges:
        out[c.key] = out.get(c.key, 0) + c.amount_minor
    return out


def test_G13_recurring_fee_is_the_whole_price_for_a_whole_period():
    charge = fee_charge(whole(PRO, JAN))
    assert (charge.kind, charge.amount_minor, charge.currency, charge.quantity) == (LineKind.FEE, 2900, "USD", 1)
    assert charge.service_start_at == JAN.start and charge.service_end_at == JAN.end


def test_G13_recomputation_bills_nothing_twice():
    should = [fee_charge(whole(PRO, JAN))]
    first = recompute(should, {})
    assert [c.amount_minor for c in first] == [2900]
    assert recompute(should, billed(first)) == []


def test_G7_immediate_upgrade_halfway_credits_unused_time_and_charges_the_rest_to_the_second():
    """Pro $29 -> Pro Plus $59 on Apr 16 00:00 (15 of 30 days used): credit $14.50, charge $29.50."""
    first = recompute([fee_charge(whole(PRO, APR))], {})
    change_at = utc(2026, 4, 16)
    new = Segment("sub_2", 2, PRO_PLUS, APR, change_at, APR.end)
    lines = recompute(plan_change_charges(whole(PRO, APR), change_at, new), billed(first))
    assert [(line.kind, line.amount_minor) for line in lines] == [
        (LineKind.PRORATION_CREDIT, -1450),
        (LineKind.PRORATION_CHARGE, 2950),
    ]
    assert lines[0].service_start_at == change_at and lines[0].service_end_at == APR.end


def test_G7_proration_is_to_the_second():
    """One second after the start of a 30-day month: the credit is 29.00 * (2591999/2592000) rounded once."""
    first = recompute([fee_charge(whole(PRO, APR))], {})
    change_at = APR.start + timedelta(seconds=1)
    new = Segment("sub_2", 2, PRO_PLUS, APR, change_at, APR.end)
    credit, charge = recompute(plan_change_charges(whole(PRO, APR), change_at, new), billed(first))
    assert credit.amount_minor == -2900  # 28.99998... rounds to 29.00
    assert charge.amount_minor == 5900


@settings(max_examples=200, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=1, max_value=APR.seconds - 1), min_size=1, max_size=6, unique=True),
    prices=st.lists(st.integers(min_value=0, max_value=10_000_000), min_size=7, max_size=7),
)
def test_G7_property_prorated_charges_and_credits_sum_to_the_fee_for_the_time_on_each_plan(cuts, prices):
    """Random immediate plan changes inside one period: what was billed in all equals
    the sum over the plans of price x time spent, each rounded once (to the minor unit)."""
    cuts = sorted(cuts)
    plans = [plan(f"p{i}", Money(prices[i]).to_decimal().__str__()) for i in range(len(cuts) + 1)]
    running = Segment("sub_0", 0, plans[0], APR, APR.start, APR.end)
    ledger = recompute([fee_charge(running)], {})
    bounds = [APR.start] + [APR.start + timedelta(seconds=c) for c in cuts] + [APR.end]
    for i, cut in enumerate(bounds[1:-1], 1):
        new = Segment(f"sub_{i}", i, plans[i], APR, cut, APR.end)
        ledger += recompute(plan_change_charges(running, cut, new), billed(ledger))
        running = new
    total = sum(c.amount_minor for c in ledger)
    spent = [Segment("s", i, plans[i], APR, bounds[i], bounds[i + 1]) for i in range(len(plans))]
    assert total == sum(segment_amount(s).amount_minor for s in spent)
    exact = sum(
        Fraction(prices[i] * int((bounds[i + 1] - bounds[i]).total_seconds()), APR.seconds) for i in range(len(plans))
    )
    assert abs(total - exact) <= Fraction(len(plans), 2)


def test_A8_extra_sessions_are_billed_in_arrears_at_the_unit_price():
    """SME: 600 included, 650 used -> 50 x EUR 0.50 = EUR 25.00."""
    (line,) = overage_charges(SME, subscription_id="sub_1", plan_version_id=1, period=JAN, usage={"sessions": 650})
    assert (line.kind, line.quantity, line.unit_amount_minor, line.amount_minor, line.currency) == (
        LineKind.OVERAGE,
        50,
        50,
        2500,
        "EUR",
    )


def test_A8_no_overage_line_within_the_included_units():
    lines = overage_charges(SME, subscription_id="sub_1", plan_version_id=1, period=JAN, usage={"sessions": 600})
    assert recompute(lines, {}) == []


def test_L8_only_overage_policies_bill_beyond_the_limit():
    hard = plan("pro", "10.00", limits=(Limit("credits", 100, Policy.HARD),))
    assert overage_charges(hard, subscription_id="s", plan_version_id=1, period=JAN, usage={"credits": 500}) == []


def test_G1_tax_is_computed_once_on_the_subtotal_and_rounded_half_up():
    lines = [fee_charge(whole(plan("x", "0.05"), JAN))]
    t = totals(lines, currency="USD", tax_rate_bp=1000)  # 10% of 0.05 = 0.005 -> 0.01
    assert (t.subtotal.amount_minor, t.tax.amount_minor, t.total.amount_minor) == (5, 1, 6)
    jpy = totals([fee_charge(whole(plan("y", "15", "JPY"), JAN))], currency="JPY", tax_rate_bp=1000)
    assert jpy.tax == Money(2, "JPY")  # 1.5 -> 2


def test_G13_invoice_numbers_follow_the_issuer_pattern():
    assert invoice_number("{issuer}-{year}-{seq:06d}", issuer="FB", year=2026, sequence=123) == "FB-2026-000123"


# -- credits (issue 14 #5, audit #5) and number series (#7) -----------------------------


def test_audit5_a_negative_total_is_a_credit_note_credited_whole_and_never_due():
    assert document_for(-1500) is Document.CREDIT_NOTE and document_for(0) is Document.INVOICE
    use = settle_with_credit(-1500, 700)
    assert (use.credited_minor, use.applied_minor, use.amount_due_minor, use.balance_change()) == (1500, 0, 0, 1500)


@given(total=st.integers(0, 10**9), balance=st.integers(-10**6, 10**9))
def test_audit5_an_invoice_takes_what_the_balance_holds_up_to_its_total(total, balance):
    use = settle_with_credit(total, balance)
    assert use.applied_minor + use.amount_due_minor == total
    assert 0 <= use.applied_minor <= max(balance, 0) and use.amount_due_minor >= 0
    assert use.applied_minor == min(total, max(balance, 0))


def test_audit7_credit_notes_and_test_clocks_have_their_own_series():
    assert number_series("FB", Document.INVOICE, test_clock=False) == "FB"
    assert number_series("FB", Document.CREDIT_NOTE, test_clock=False) == "FB-CN"
    assert number_series("FB", Document.INVOICE, test_clock=True) == "TEST-FB"
    assert number_series("FB", Document.CREDIT_NOTE, test_clock=True) == "TEST-FB-CN"


@given(amount=st.integers(1, 10**6), rooms=st.lists(st.integers(0, 10**6), max_size=6))
def test_audit5_a_refund_is_spread_over_charges_never_beyond_what_each_has_left(amount, rooms):
    charges = [(f"pay_{i}", room) for i, room in enumerate(rooms)]
    split = split_refund(amount, charges)
    room_of = dict(charges)
    assert all(0 < take <= room_of[cid] for cid, take in split)
    assert sum(take for _, take in split) == min(amount, sum(rooms))
    if any(room >= amount for room in rooms):  # one charge holds it all: one refund, the newest such charge
        assert split == [(next(cid for cid, room in charges if room >= amount), amount)]
