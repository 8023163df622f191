"""The operator console's tenant list comes from one service call in a constant number of statements (audit 3.1:
no repository in the portal, no query per tenant), with MRR from the domain (audit 3.2)."""

from __future__ import annotations

from sqlalchemy import event

from farebox.kernel.access import SYSTEM
from farebox.kernel.money import Money
from farebox.metering.services import admission
from farebox.tenants.services import overview as tenant_overview

from factories import make_tenant


def _statements(fb, fn):
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(fb.engine, "before_cursor_execute", count)
    try:
        return fn(), len(seen)
    finally:
        event.remove(fb.engine, "before_cursor_execute", count)


def test_the_overview_reads_a_constant_number_of_statements_whatever_the_number_of_tenants(fb):
    for i in range(2):
        make_tenant(fb, tenant_id=f"a{i}", catalog="agent-sessions", plan="sme")
    make_tenant(fb, tenant_id="nosub", card=None)
    overview = tenant_overview.tenant_overview(fb, SYSTEM)  # warm the plan caches
    few, few_count = _statements(fb, lambda: tenant_overview.tenant_overview(fb, SYSTEM))
    for i in range(2, 12):
        make_tenant(fb, tenant_id=f"a{i}", catalog="agent-sessions", plan="sme")
    many, many_count = _statements(fb, lambda: tenant_overview.tenant_overview(fb, SYSTEM))
    assert len(few.rows) == 3 and len(many.rows) == 13 and overview.rows
    assert many_count == few_count <= 6, (few_count, many_count)  # constant, whatever the number of tenants


def test_rows_carry_the_current_subscription_usage_and_mrr_totals_per_currency(fb):
    make_tenant(fb, tenant_id="agents", catalog="agent-sessions", plan="sme")
    make_tenant(fb, tenant_id="events", catalog="attendee-credits", plan="pro")
    make_tenant(fb, tenant_id="webinars", catalog="session-caps", plan="free", card=None)
    make_tenant(fb, tenant_id="nosub", card=None)
    for i in range(3):
        admission.message(fb, SYSTEM, "agents", f"c{i}", sender="customer")
    rows = {r.tenant["id"]: r for r in tenant_overview.tenant_overview(fb, SYSTEM).rows}
    assert rows["agents"].usage.meter("sessions").used == 3 and rows["agents"].mrr == Money(15000, "EUR")
    assert rows["events"].mrr == Money(9900, "USD")  # 1,188.00 a year / 12
    assert rows["webinars"].mrr is None and rows["webinars"].subscription is not None
    assert rows["nosub"].subscription is None and rows["nosub"].usage.meters == []
    totals = tenant_overview.tenant_overview(fb, SYSTEM).mrr_totals
    assert totals == {"EUR": Money(15000, "EUR"), "USD": Money(9900, "USD")}
    assert [r.tenant["id"] for r in tenant_overview.tenant_overview(fb, SYSTEM, search="agen").rows] == ["agents"]
