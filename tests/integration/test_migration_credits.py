"""Migration 0008 (issue 14 #5, audit #5): the negative invoices issued before credit notes existed, marked
`paid` and their credit lost, become credit notes whose credit is on the customer's balance."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert

from farebox.bootstrap import Farebox
from farebox.invoicing.services import credits, invoices
from farebox.kernel.access import SYSTEM
from farebox.kernel.clock import FrozenClock
from farebox.settings import Settings
from farebox.storage.engine import make_engine
from farebox.storage.migrate import upgrade
from farebox.storage.tables.core import tenants
from farebox.storage.tables.invoicing import invoices as invoices_table

from support import START


def test_audit5_migration_turns_old_negative_paid_invoices_into_credit_notes_on_the_balance(tmp_path):
    url = f"sqlite:///{tmp_path / 'fb.db'}"
    engine = make_engine(url)
    upgrade(engine, "0007_audit")
    upgrade(engine, "0005_invoicing")
    with engine.begin() as conn:  # the rows as main wrote them (the columns of 0005; Core writes only those given)
        conn.execute(insert(tenants).values(id="acme", name="Acme", tax_rate_bp=0, created_at=START))
        for n, total, status in ((1, 5900, "paid"), (2, -1500, "paid"), (3, -700, "void")):
            conn.execute(
                insert(invoices_table).values(
                    tenant_id="acme",
                    id=f"inv_{n}",
                    billing_key=f"key_{n}",
                    number=f"FB-2026-00000{n}",
                    subscription_id="sub_1",
                    kind="proration",
                    status=status,
                    currency="USD",
                    subtotal_minor=total,
                    tax_rate_bp=0,
                    tax_minor=0,
                    total_minor=total,
                    bill_to={},
                    period_start_at=START,
                    period_end_at=START + timedelta(days=31),
                    issued_at=START + timedelta(days=n),
                    paid_at=START,
                    cause="old",
                )
            )
    upgrade(engine)
    fb = Farebox(engine=engine, clock=FrozenClock(START), settings=Settings(database_url=url, operator_key="k"))
    (note,) = invoices.list_invoices(fb, SYSTEM, "acme", document="credit_note")
    assert (note.number, note.status, note.paid_at, note.total.format()) == (
        "FB-2026-000002",
        "issued",
        None,
        "-15.00 USD",
    )
    assert [(i.number, i.amount_due.format()) for i in invoices.list_invoices(fb, SYSTEM, "acme")] == [
        ("FB-2026-000003", "0.00 USD"), ("FB-2026-000001", "59.00 USD")]
    balance = credits.credit_balance(fb, SYSTEM, "acme")
    assert balance.of("USD").format() == "15.00 USD" and "FB-2026-000002" in balance.entries[0].cause
    assert credits.verify(fb, SYSTEM, "acme") == []
    engine.dispose()
