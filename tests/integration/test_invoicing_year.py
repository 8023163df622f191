"""A year on a test clock for one tenant of each bundled catalog: the invoices a person
would expect, line by line (G2, G13, S1, L8, A8, issue 6).

Nothing is published by hand: the tenant is subscribed through the service, usage goes
through admission, and the test clock's advance runs the renewals, the invoicing and
the charges, as `farebox worker` would in real time.
"""

from __future__ import annotations

from datetime import datetime, timezone

from farebox.clocks import service as clocks
from farebox.invoicing.services import invoices
from farebox.kernel.access import SYSTEM
from farebox.metering.services import admission
from farebox.subscriptions.services import subscriptions

from factories import make_tenant
from metering_support import shrink


def _year(fb, *, tenant_id, catalog, plan, start):
    make_tenant(fb, tenant_id=tenant_id)
    clock = clocks.create(fb, SYSTEM, name=f"year of {tenant_id}", start=start)
    clocks.attach(fb, SYSTEM, clock["id"], tenant_id)
    subscriptions.subscribe(fb, SYSTEM, tenant_id, catalog=catalog, plan=plan, cause="test")
    return clock["id"]


def _lines(fb, tenant_id):
    """(issued on, kind, [(line kind, quantity, unit, amount)], total, status), oldest first."""
    found = sorted(invoices.list_invoices(fb, SYSTEM, tenant_id), key=lambda i: (i.issued_at, i.number))
    return [
        (
            i.issued_at.date().isoformat(), i.kind,
            sorted((line.kind, line.quantity, line.unit_amount.format(), line.amount.format()) for line in i.lines),
            i.total.format(), i.status,
        )
        for i in found
    ]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def test_G13_A8_sme_a_year_of_150_eur_on_the_1st_plus_50_cents_per_extra_session_of_the_month_before(fb):
    clock_id = _year(fb, tenant_id="sme", catalog="agent-sessions", plan="sme", start=_at("2026-01-01T00:00:00"))
    shrink(fb, "sme", "sessions", 5, policy="overage")  # 5 included instead of 600
    for i in range(7):  # January: 7 conversations, 2 beyond the 5 included
        assert admission.message(fb, SYSTEM, "sme", f"jan-{i}", sender="customer").counted
    clocks.advance(fb, SYSTEM, clock_id, to=_at("2026-03-15T00:00:00"))
    for i in range(6):  # March: 1 extra session
        admission.message(fb, SYSTEM, "sme", f"mar-{i}", sender="customer")
    clocks.advance(fb, SYSTEM, clock_id, to=_at("2027-01-01T00:00:00"))
    got = _lines(fb, "sme")
    fee = ("fee", 1, "150.00 EUR", "150.00 EUR")
    expected = [("2026-01-01", "subscription", [fee], "150.00 EUR", "paid")]
    for month in range(2, 13):
        extra = {2: 2, 4: 1}.get(month, 0)  # billed in arrears, on the next month's invoice
        lines = [fee] + ([("overage", extra, "0.50 EUR", f"{extra * 0.5:.2f} EUR")] if extra else [])
        expected.append((f"2026-{month:02d}-01", "renewal", sorted(lines), f"{150 + extra * 0.5:.2f} EUR", "paid"))
    expected.append(("2027-01-01", "renewal", [fee], "150.00 EUR", "paid"))
    assert got == expected


def test_G13_S1_session_caps_pro_monthly_from_the_31st_is_billed_on_each_months_last_day(fb):
    clock_id = _year(fb, tenant_id="caps", catalog="session-caps", plan="pro", start=_at("2026-01-31T09:00:00"))
    clocks.advance(fb, SYSTEM, clock_id, to=_at("2027-01-31T09:00:00"))
    got = _lines(fb, "caps")
    days = ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30", "2026-05-31", "2026-06-30", "2026-07-31",
            "2026-08-31", "2026-09-30", "2026-10-31", "2026-11-30", "2026-12-31", "2027-01-31"]
    fee = [("fee", 1, "29.00 USD", "29.00 USD")]
    assert got == [
        (day, "subscription" if n == 0 else "renewal", fee, "29.00 USD", "paid") for n, day in enumerate(days)
    ]


def test_G13_L5_attendee_credits_pro_is_billed_once_a_year_and_free_never(fb):
    clock_id = _year(fb, tenant_id="credits", catalog="attendee-credits", plan="pro", start=_at("2026-03-10T12:00:00"))
    make_tenant(fb, tenant_id="freebie")
    clocks.attach(fb, SYSTEM, clock_id, "freebie")
    subscriptions.subscribe(fb, SYSTEM, "freebie", catalog="attendee-credits", plan="free", cause="test")
    for i in range(40):  # attendees never appear on a credit plan's invoice (a hard pool, no overage)
        admission.join(fb, SYSTEM, "credits", "webinar-1", f"p{i}")
    clocks.advance(fb, SYSTEM, clock_id, to=_at("2027-03-10T12:00:00"))
    fee = [("fee", 1, "1188.00 USD", "1188.00 USD")]
    assert _lines(fb, "credits") == [
        ("2026-03-10", "subscription", fee, "1188.00 USD", "paid"),
        ("2027-03-10", "renewal", fee, "1188.00 USD", "paid"),
    ]
    assert _lines(fb, "freebie") == []
