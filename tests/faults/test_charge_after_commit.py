"""Fault tests (audit #1, #2, G4, G9): an invoice is charged once whatever fails, and no
provider call runs while the database is held.

The invoice and its queued payment attempt commit first; the provider is asked after the
commit, with an idempotency key from the invoice's billing key and the attempt number; the
answer is recorded in a transaction of its own.  So:

* the transaction recording the answer fails: the attempt stays queued, its due item asks
  again with the same key, the provider answers its first charge: one charge;
* the process is killed between issuing and charging (or after the provider charged): the
  rerun (a worker pass) asks once, with the same key: one charge;
* the provider hangs for 10 s: other tenants' admissions answer meanwhile (on SQLite a write
  transaction holds the one write lock; none is open during the call).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from farebox.events import due, signals
from farebox.invoicing.services import invoices
from farebox.kernel.access import SYSTEM
from farebox.metering.services import admission
from farebox.payments import service as payments
from farebox.payments.providers.base import ChargeResult
from farebox.payments.providers.sandbox import SandboxProvider
from farebox.subscriptions.services import subscriptions

from factories import make_tenant
from support import billing_key, subprocess_env

HERE = Path(__file__).resolve().parent


class Recording(SandboxProvider):
    """The sandbox, remembering every charge request's idempotency key."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def charge(self, **kw: Any) -> ChargeResult:
        self.keys.append(kw["idempotency_key"])
        return super().charge(**kw)


@pytest.fixture
def recording(fb):
    provider = Recording()
    fb.payment_provider = provider
    return provider


def _fail_once(monkeypatch, kind: str, message: str) -> list[int]:
    """A listener of `kind` that raises the first time (anything failing in that transaction)."""
    failed: list[int] = []

    def boom(uow, signal) -> None:
        if not failed:
            failed.append(1)
            raise RuntimeError(message)

    monkeypatch.setitem(signals._LISTENERS, kind, [*signals._LISTENERS.get(kind, []), boom])
    return failed


def test_audit1_the_transaction_failing_after_the_provider_answered_charges_once(fb, recording, monkeypatch):
    """probes/double_charge.py: a listener of `invoice.paid` fails once after the provider charged."""
    failed = _fail_once(monkeypatch, "invoice.paid", "the transaction fails after the provider charged")
    make_tenant(fb, tenant_id="acme")
    subscriptions.subscribe(
        fb, SYSTEM, "acme", catalog="session-caps", plan="pro", cause="test"
    )  # committed: no retry needed
    (invoice,) = invoices.list_invoices(fb, SYSTEM, "acme")
    assert invoice.status == "open" and failed == [1]
    (attempt,) = payments.attempts(fb, SYSTEM, "acme", invoice.id)
    assert attempt.status == "pending"  # asked, answer not recorded
    fb.clock.advance(timedelta(minutes=10))
    assert [p.outcome for p in due.run_due(fb)] == ["retry 1: queued"]  # the outbox asks again
    (invoice,) = invoices.list_invoices(fb, SYSTEM, "acme")
    assert invoice.status == "paid"
    (attempt,) = payments.attempts(fb, SYSTEM, "acme", invoice.id)
    assert attempt.status == "succeeded"
    key = f"{billing_key(fb, 'acme', invoice.id)}:attempt:1"
    assert recording.keys == [key, key]  # asked twice with one key: the provider charged once


def test_audit1_a_failed_issuing_transaction_never_reaches_the_provider(fb, recording, monkeypatch):
    """An `invoice.issued` listener fails: nothing is committed and nobody was charged; the retry charges once."""
    _fail_once(monkeypatch, "invoice.issued", "the issuing transaction fails")
    make_tenant(fb, tenant_id="acme")
    with pytest.raises(RuntimeError):
        subscriptions.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="pro", cause="test")
    assert recording.keys == [] and invoices.list_invoices(fb, SYSTEM, "acme") == []
    subscriptions.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="pro", cause="test")
    (invoice,) = invoices.list_invoices(fb, SYSTEM, "acme")
    assert invoice.status == "paid" and recording.keys == [f"{billing_key(fb, 'acme', invoice.id)}:attempt:1"]


def _child(db_url: str, mode: str, ledger: Path) -> subprocess.CompletedProcess[str]:
    env = subprocess_env()
    env["PYTHONPATH"] = f"{HERE.parent}:{env['PYTHONPATH']}"
    return subprocess.run(
        [sys.executable, str(HERE / "charge_child.py"), db_url, mode, str(ledger)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _ledger(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize(
    "die", ["before", "after"], ids=["killed-before-the-provider-call", "killed-after-the-provider-charged"]
)
def test_audit1_a_process_killed_between_issue_and_charge_is_charged_once_by_the_rerun(fb, db_url, tmp_path, die):
    make_tenant(fb, tenant_id="acme")
    ledger = tmp_path / "ledger.jsonl"
    killed = _child(db_url, f"subscribe:{die}", ledger)
    assert killed.returncode == 9, killed.stderr
    (invoice,) = invoices.list_invoices(fb, SYSTEM, "acme")
    assert invoice.status == "open"  # issued and committed before the provider was asked
    (attempt,) = payments.attempts(fb, SYSTEM, "acme", invoice.id)
    assert attempt.status == "pending"
    assert len(_ledger(ledger)) == (0 if die == "before" else 1)

    rerun = _child(db_url, "worker", ledger)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout.splitlines()[-1]) == ["retry 1: queued"]
    again = _child(db_url, "worker", ledger)
    assert json.loads(again.stdout.splitlines()[-1]) == []  # nothing left to do
    charges = _ledger(ledger)
    key = f"{billing_key(fb, 'acme', invoice.id)}:attempt:1"
    assert {c["key"] for c in charges} == {key} and [c["new"] for c in charges].count(True) == 1  # one charge
    (invoice,) = invoices.list_invoices(fb, SYSTEM, "acme")
    assert invoice.status == "paid"
    (attempt,) = payments.attempts(fb, SYSTEM, "acme", invoice.id)
    assert (attempt.status, attempt.amount.amount_minor) == ("succeeded", charges[0]["amount"])


class Hanging(SandboxProvider):
    """A provider that takes `seconds` to answer a charge."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.entered = threading.Event()

    def charge(self, **kw: Any) -> ChargeResult:
        self.entered.set()
        time.sleep(self.seconds)
        return super().charge(**kw)


def test_audit2_a_provider_hanging_10s_never_stops_another_tenants_admissions(fb):
    make_tenant(fb, tenant_id="other", catalog="session-caps", plan="pro")
    make_tenant(fb, tenant_id="slow")
    provider = Hanging(10.0)
    fb.payment_provider = provider
    errors: list[BaseException] = []

    def subscribe() -> None:
        try:
            subscriptions.subscribe(fb, SYSTEM, "slow", catalog="session-caps", plan="pro", cause="test")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    worker = threading.Thread(target=subscribe)
    try:
        started = time.monotonic()
        worker.start()
        assert provider.entered.wait(30), "the provider was never asked"
        slowest = 0.0
        for n in range(20):
            t0 = time.monotonic()
            decision = admission.start_occurrence(fb, SYSTEM, "other", f"o{n}")
            slowest = max(slowest, time.monotonic() - t0)
            assert decision.admitted
        assert worker.is_alive() and time.monotonic() - started < 10  # all of it while the provider hung
        assert slowest < 2.0, f"an admission of another tenant waited {slowest:.1f} s"
    finally:
        worker.join(60)
    assert not errors
    (invoice,) = invoices.list_invoices(fb, SYSTEM, "slow")
    assert invoice.status == "paid"
