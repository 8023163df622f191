"""The billing run's batched path bills exactly as the per-subscription path (G13, G9, G7, A8).

The same tenants and subscriptions are billed twice, on a fresh database each
time: once one subscription after another (`per_subscription=True`, the path
the lifecycle's signals take), once in batches.  Everything billing writes
must come out the same: invoices with their numbers, totals and lines,
payment attempts with their idempotency keys, the declined renewal's grace
(G9), the alerts and deliveries in the outbox, the due items and the number
sequence.  Generated ids differ between the two runs, so they are replaced
by what they stand for (an invoice by its number, a subscription by its tenant).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select, text

from farebox.alerts.services import webhook_endpoints
from farebox.bootstrap import Farebox
from farebox.clocks import service as clocks
from farebox.demo import data as demo
from farebox.events import due, signals
from farebox.invoicing.services import billing_run
from farebox.invoicing.services import issuing as invoicing
from farebox.kernel.access import SYSTEM
from farebox.kernel.clock import FrozenClock
from farebox.payments import service as payments
from farebox.payments.providers.sandbox import FAILS_LATER, INSUFFICIENT_FUNDS
from farebox.storage.tables.alerts import deliveries, notifications
from farebox.storage.tables.base import metadata
from farebox.storage.tables.core import due_items, plan_versions
from farebox.storage.tables.invoicing import invoice_lines, invoice_sequences, invoices
from farebox.storage.tables.payments import payment_attempts, payment_customers
from farebox.storage.tables.subscriptions import subscriptions
from farebox.subscriptions.services import subscriptions as subs
from farebox.tenants.db import tenants as tenants_repo

from factories import make_tenant

START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
ID = re.compile(r"\b[a-z]{2,4}_[0-9a-f]{26}\b")
NONCE = re.compile(r"^(sub-of-[^:]+):[0-9a-f]{8}$")  # lifecycle's due items: `<subscription id>:<random nonce>`


def overage_of_sme(conn, tenant_id, subscription_id, start, end):
    """The overage of the month that ended, for one tenant (A8)."""
    return {"sessions": 643} if tenant_id == "sme" and start < START + timedelta(days=20) else {}


@pytest.fixture(autouse=True)
def sandbox(monkeypatch, fb):
    fb.usage_source = overage_of_sme
    # the billing run, not the lifecycle's signals, bills these periods (as for subscriptions imported from elsewhere)
    for kind in ("subscription.started", "subscription.renewed"):
        monkeypatch.setitem(
            signals._LISTENERS,
            kind,
            [fn for fn in signals._LISTENERS.get(kind, []) if fn.__module__ != invoicing.__name__],
        )


def _scenario(fb) -> str:
    """Tenants to bill: good, declined-later and insufficient-funds cards, invoiced by bank transfer, a tax rate,
    a free plan, a yearly plan, one tenant on a test clock; a webhook endpoint for the alerts."""
    webhook_endpoints.create_endpoint(fb, SYSTEM, url="https://hooks.example.com/farebox", kinds=("invoice_issued",))
    test_clock = clocks.create(fb, SYSTEM, name="billing", start=START + timedelta(days=2, hours=3))
    plans = {"good1": ("session-caps", "pro"), "good2": ("attendee-credits", "pro"), "sme": ("agent-sessions", "sme"),
             "later": ("session-caps", "pro"), "funds": ("session-caps", "pro"), "transfer": ("session-caps", "pro"),
             "taxed": ("session-caps", "pro"), "free": ("session-caps", "free"), "onclock": ("session-caps", "pro")}
    cards = {"later": FAILS_LATER, "funds": INSUFFICIENT_FUNDS, "transfer": None, "free": None}
    for tenant_id, (catalog, plan) in plans.items():
        make_tenant(fb, tenant_id=tenant_id, card=None)
        if tenant_id == "onclock":
            clocks.attach(fb, SYSTEM, test_clock["id"], tenant_id)
        if tenant_id == "taxed":
            with fb.uow() as uow:
                tenants_repo.update_tenant(
                    uow.conn, tenant_id, tax_rate_bp=2000, tax_id="DE123456789", billing_email="ap@taxed.test"
                )
                uow.commit()
        if tenant_id == "transfer":
            payments.set_bank_transfer(fb, SYSTEM, tenant_id, terms_days=30)
        card = cards.get(tenant_id, "4242424242424242")
        if card:
            payments.add_payment_method(fb, SYSTEM, tenant_id, token=card)
        subs.subscribe(fb, SYSTEM, tenant_id, catalog=catalog, plan=plan, cause="test")
    return test_clock["id"]


def _bill_two_periods(engine, settings, *, per_subscription: bool) -> list[tuple[int, int]]:
    """The first invoices, then (a period later) the renewals; (examined, invoiced) of each run."""
    clock = FrozenClock(START)
    fb = Farebox(engine=engine, clock=clock, settings=settings, usage_source=overage_of_sme)
    clock_id = _scenario(fb)
    runs = []
    for _ in range(2):
        report = billing_run.run(fb, SYSTEM, batch_size=3, per_subscription=per_subscription)
        runs.append((report.examined, report.invoiced))
        assert billing_run.run(fb, SYSTEM, per_subscription=per_subscription).invoiced == 0
        clock.set(clock.now() + timedelta(days=40))
        due.run_due(fb, limit=1000)  # periods roll (the declined renewal's retries are due later)
        clocks.advance(fb, SYSTEM, clock_id, by=timedelta(days=40))
    return runs


def _snapshot(fb) -> dict[str, list[str]]:
    """Everything billing wrote, with generated ids replaced by what they stand for."""
    with fb.engine.connect() as conn:
        names: dict[str, str] = {}
        for row in conn.execute(select(invoices.c.id, invoices.c.number)):
            names[row.id] = row.number
        for row in conn.execute(select(subscriptions.c.id, subscriptions.c.tenant_id, subscriptions.c.created_at)):
            names[row.id] = f"sub-of-{row.tenant_id}-{row.created_at:%Y%m%dT%H%M%S}"
        versions = {
            row.id: f"{row.catalog}/{row.code}"
            for row in conn.execute(select(plan_versions.c.id, plan_versions.c.catalog, plan_versions.c.code))
        }

        def plain(value: Any) -> Any:
            if isinstance(value, str):
                return NONCE.sub(r"\1:<nonce>", ID.sub(lambda m: names.get(m.group(0), "<id>"), value))
            if isinstance(value, dict):
                return {k: plain(v) for k, v in sorted(value.items())}
            if isinstance(value, list):
                return [plain(v) for v in value]
            return value.isoformat() if hasattr(value, "isoformat") else value

        def rows(table, *, drop: tuple[str, ...] = ()) -> list[str]:
            out = []
            for row in conn.execute(select(table)).mappings():
                values = {k: plain(v) for k, v in row.items() if k not in drop}
                if "plan_version_id" in values:
                    values["plan_version_id"] = versions.get(values["plan_version_id"])
                out.append(repr(sorted(values.items())))
            return sorted(out)

        return {
            "invoices": rows(invoices),
            "invoice_lines": rows(invoice_lines),
            "invoice_sequences": rows(invoice_sequences),
            # the sandbox's reference is a digest of the idempotency key, which holds the invoice id
            "payment_attempts": rows(payment_attempts, drop=("provider_ref",)),
            "payment_customers": rows(payment_customers),
            "subscriptions": rows(subscriptions),
            "notifications": rows(notifications),
            "deliveries": rows(deliveries),
            "due_items": rows(due_items),
        }


def _reset(fb) -> None:
    with fb.engine.begin() as conn:
        names = [t.name for t in reversed(metadata.sorted_tables)]
        if fb.engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE"))
        else:
            for name in names:
                conn.execute(text(f'DELETE FROM "{name}"'))
    demo.load_catalogs(fb)


def test_G13_batched_billing_run_writes_what_the_per_subscription_run_writes(fb):
    one_by_one_runs = _bill_two_periods(fb.engine, fb.settings, per_subscription=True)
    one_by_one = _snapshot(fb)
    _reset(fb)
    batched_runs = _bill_two_periods(fb.engine, fb.settings, per_subscription=False)
    batched = _snapshot(fb)

    assert batched_runs == one_by_one_runs
    assert one_by_one_runs == [(8, 8), (7, 7)]  # every paid plan, then the renewals of the monthly ones
    for table, rows in one_by_one.items():
        assert batched[table] == rows, table
    # the scenario covers what it claims: numbers without gaps, a tax, overage, declines with grace (G9), alerts by
    # webhook and e-mail
    # (tenants on a test clock number in the TEST- series, audit #7: the series' numbers add up to the invoices)
    assert len(batched["invoices"]) == 15
    assert sum(int(re.search(r"\('last_number', (\d+)\)", r).group(1)) for r in batched["invoice_sequences"]) == 15
    assert any("'overage'" in r for r in batched["invoice_lines"])
    assert any("'payment_issue'" in r for r in batched["subscriptions"])
    assert any("'insufficient_funds'" in r for r in batched["payment_attempts"])
    # invoiced by bank transfer: invoiced, never charged
    assert any("'transfer'" in r for r in batched["invoices"]) and not any(
        "'transfer'" in r for r in batched["payment_attempts"]
    )
    assert any("'webhook'" in r for r in batched["deliveries"]) and any("'email'" in r for r in batched["deliveries"])
    assert any("DE123456789" in r for r in batched["invoices"])
