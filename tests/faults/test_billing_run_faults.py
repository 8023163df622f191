"""Fault test (G4, G13): the billing run fails while charging.

A provider error the adapter does not turn into an answer (a rate limit, a 5xx) or a
lost connection hits a batch after some charges were made.  The invoices and their queued
attempts were committed before the provider was asked (audit #1), so they keep their
idempotency keys: the attempt without an answer is asked again 10 minutes later with the
very same key, and the provider (which answers a repeated key with its first answer)
charges nobody twice."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from farebox.events import due, signals
from farebox.invoicing.services import billing_run
from farebox.invoicing.services import issuing as invoicing
from farebox.kernel.access import SYSTEM
from farebox.payments.providers.sandbox import SUCCEEDS, SandboxProvider
from farebox.storage.tables.invoicing import invoices
from farebox.storage.tables.payments import payment_attempts
from farebox.subscriptions.services import subscriptions as subs

from factories import make_tenant


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
        monkeypatch.setitem(
            signals._LISTENERS,
            kind,
            [f for f in signals._LISTENERS.get(kind, []) if f.__module__ != invoicing.__name__],
        )
    provider = FailingOnce(fail_at=3)
    fb.payment_provider = provider
    for tenant in ("a", "b", "c", "d"):
        make_tenant(fb, tenant_id=tenant, card=SUCCEEDS)
        subs.subscribe(fb, SYSTEM, tenant, catalog="session-caps", plan="pro", cause="test")
    billing_run.run(fb, SYSTEM)  # the provider's error does not undo what was committed
    assert _count(fb, invoices) == 4  # issued and kept, though one charge failed
    assert _count(fb, payment_attempts, payment_attempts.c.status == "succeeded") == 3
    assert _count(fb, payment_attempts, payment_attempts.c.status == "pending") == 1  # asked, no answer
    first_run = list(provider.keys)

    provider.fail_at = 0  # the provider is back
    report = billing_run.run(fb, SYSTEM)
    assert report.invoiced == 0  # nothing billed twice
    fb.clock.advance(timedelta(minutes=10))
    due.run_due(fb)  # the unanswered attempt is asked again
    assert _count(fb, invoices, invoices.c.status == "paid") == 4
    assert _count(fb, payment_attempts) == 4
    # the charge that got no answer was asked again with its own key, and only it
    assert provider.keys[len(first_run):] == first_run[2:3]
    assert len(set(provider.keys)) == 4 and all(key.endswith(":attempt:1") for key in provider.keys)
    assert billing_run.charge_left_over(fb) == 0
