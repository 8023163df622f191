"""Fault test (G4, G13): the billing run fails while charging.

A provider error the adapter does not turn into an attempt (a rate limit, a 5xx) or a
lost connection interrupts a batch after some charges were made.  The invoices were
committed before charging, so they keep their ids and their idempotency keys: the next
run charges every open invoice that has no attempt with the very same key, and the
provider (which answers a repeated key with its first answer) charges nobody twice."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from factories import make_tenant
from farebox.adapters.db.tables.invoicing import invoices
from farebox.adapters.db.tables.payments import payment_attempts
from farebox.adapters.payments.sandbox import SUCCEEDS, SandboxProvider
from farebox.domain.access import SYSTEM
from farebox.services import billing_run, invoicing, signals
from farebox.services import subscriptions as subs


class FailingOnce(SandboxProvider):
    """Raises on the `fail_at`-th charge request, after the two before it were charged."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.keys: list[str] = []
        self.fail_at = fail_at

    def charge(self, **kwargs):
        self.keys.append(kwargs["idempotency_key"])
        if len(self.keys) == self.fail_at:
            raise RuntimeError("provider answered 500 (not a card error)")
        return super().charge(**kwargs)


def _count(fb, table, *where) -> int:
    with fb.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def test_G4_G13_a_billing_run_failing_while_charging_never_charges_twice(fb, monkeypatch):
    for kind in ("subscription.started", "subscription.renewed"):  # leave the invoicing to the billing run
        monkeypatch.setitem(signals._LISTENERS, kind, [f for f in signals._LISTENERS.get(kind, []) if f.__module__ != invoicing.__name__])
    provider = FailingOnce(fail_at=3)
    fb.payment_provider = provider
    for tenant in ("a", "b", "c", "d"):
        make_tenant(fb, tenant_id=tenant, card=SUCCEEDS)
        subs.subscribe(fb, SYSTEM, tenant, catalog="session-caps", plan="pro", cause="test")
    with pytest.raises(RuntimeError):
        billing_run.run(fb, SYSTEM)
    assert _count(fb, invoices) == 4  # issued and kept, though the charging failed
    assert _count(fb, payment_attempts) == 0  # the charging transaction rolled back whole
    first_run = list(provider.keys)

    provider.fail_at = 0  # the provider is back
    report = billing_run.run(fb, SYSTEM)
    assert report.invoiced == 0  # nothing billed twice
    assert _count(fb, invoices, invoices.c.status == "paid") == 4
    assert _count(fb, payment_attempts) == 4
    # the two charges made before the failure were asked again with their own keys
    assert provider.keys[len(first_run):][:2] == first_run[:2]
    assert len(set(provider.keys)) == 4 and all(key.endswith(":attempt:1") for key in provider.keys)
    assert billing_run.charge_left_over(fb) == 0
