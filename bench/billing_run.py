"""Billing run over many subscriptions (target: 100,000 invoiced in < 60 s on SQLite; a rerun creates nothing).

    .venv/bin/python bench/billing_run.py [N]        # default N = 20000

Prints the run's rate beside a baseline measured in the same run: the same
number of invoice rows and line rows written with the bare `sqlite3` module
(`executemany`), i.e. the floor of what storing the invoices costs.  Also the
CPU time of the process during the run (`time.process_time`): on the shared
development machine the wall time includes waiting for a core, the CPU time
is what the run itself cost.

    .venv/bin/python bench/billing_run.py N --per-subscription   # the signals' path, one by one (the "before")
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from farebox.bootstrap import Farebox
from farebox.catalog.service import offered_plan
from farebox.demo import data as demo
from farebox.invoicing.services import billing_run
from farebox.kernel.access import SYSTEM
from farebox.kernel.clock import FrozenClock
from farebox.kernel.periods import period_at, utc
from farebox.payments.providers.sandbox import SandboxProvider
from farebox.settings import Settings
from farebox.storage.engine import make_engine
from farebox.storage.migrate import upgrade
from farebox.storage.tables.core import tenants
from farebox.storage.tables.payments import payment_methods
from farebox.storage.tables.subscriptions import subscriptions


def setup(url: str, n: int) -> Farebox:
    engine = make_engine(url)
    upgrade(engine)
    now = utc(2026, 3, 1, 9)
    fb = Farebox(
        engine=engine,
        clock=FrozenClock(now),
        settings=Settings(database_url=url),
        payment_provider=SandboxProvider(),
        usage_source=lambda conn, t, s, a, b: {},  # fees only: the bench measures issuing and charging
    )
    demo.load_catalogs(fb)
    with fb.uow() as uow:
        version = offered_plan(uow.conn, "session-caps", "pro").version_id
        period = period_at(now - timedelta(days=3), "month", now)
        ts = [{"id": f"t{i:06d}", "name": f"T{i}", "tax_rate_bp": 0, "created_at": now} for i in range(n)]
        uow.conn.execute(tenants.insert(), ts)
        uow.conn.execute(
            subscriptions.insert(),
            [
                {
                    "tenant_id": t["id"],
                    "id": f"sub_{t['id']}",
                    "plan_version_id": version,
                    "status": "active",
                    "anchor_at": period.start,
                    "period_start_at": period.start,
                    "period_end_at": period.end,
                    "starts_at": period.start,
                    "created_at": period.start,
                    "cancel_at_period_end": False,
                    "row_version": 1,
                    "settings": {},
                }
                for t in ts
            ],
        )
        uow.conn.execute(
            payment_methods.insert(),
            [
                {
                    "tenant_id": t["id"],
                    "id": f"pm_{t['id']}",
                    "provider": "sandbox",
                    "provider_ref": "pm_sandbox_4242424242424242_x",
                    "brand": "visa",
                    "last4": "4242",
                    "is_default": True,
                    "created_at": now,
                }
                for t in ts
            ],
        )
        uow.commit()
    return fb


def baseline(path: Path, n: int) -> float:
    """Bare sqlite3: N invoices and N lines with executemany, one transaction."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO invoices (tenant_id, id, billing_key, number, subscription_id, kind, status, currency, "
        "subtotal_minor, tax_rate_bp, tax_minor, total_minor, tax_id, bill_to, period_start_at, period_end_at, "
        "issued_at, paid_at, voided_at, cause) "
        "VALUES (?, ?, ?, ?, ?, 'subscription', 'paid', 'USD', 2900, 0, 0, 2900, NULL, '{}', '2026-02-26', "
        "'2026-03-26', '2026-03-01', '2026-03-01', NULL, 'baseline')",
        [(f"t{i:06d}", f"inv_b{i}", f"b{i}", f"B-{i}", f"sub_t{i:06d}") for i in range(n)],
    )
    conn.executemany(
        "INSERT INTO invoice_lines (tenant_id, invoice_id, position, key, kind, description, subscription_id, "
        "plan_version_id, quantity, unit_amount_minor, amount_minor, period_start_at, period_end_at, "
        "service_start_at, service_end_at) "
        "VALUES (?, ?, 1, ?, 'fee', 'Pro', ?, 1, 1, 2900, 2900, '2026-02-26', '2026-03-26', '2026-02-26', "
        "'2026-03-26')",
        [(f"t{i:06d}", f"inv_b{i}", f"kb{i}", f"sub_t{i:06d}") for i in range(n)],
    )
    conn.execute("ROLLBACK")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 20_000
    per_subscription = "--per-subscription" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        fb = setup(f"sqlite:///{path}", n)
        base = baseline(path, n)
        started, cpu_started = time.perf_counter(), time.process_time()
        report = billing_run.run(fb, SYSTEM, per_subscription=per_subscription)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        started = time.perf_counter()
        rerun = billing_run.run(fb, SYSTEM, per_subscription=per_subscription)
        rerun_elapsed = time.perf_counter() - started
        fb.engine.dispose()
    assert report.invoiced == n, report.invoiced
    assert rerun.invoiced == 0
    path_name = "per subscription" if per_subscription else "batched"
    print(
        f"billing run ({path_name}), SQLite, {n} subscriptions: {elapsed:.2f} s ({n / elapsed:,.0f} subscriptions/s; "
        f"invoiced and charged {report.invoiced})"
    )
    print(f"  CPU time of the run: {cpu:.2f} s ({cpu / elapsed:.0%} of the wall time)")
    print(f"  projected for 100,000: {100_000 * elapsed / n:.0f} s (target < 60 s)")
    print(f"  baseline, bare sqlite3 executemany of {n} invoices + {n} lines: {base:.3f} s ({n / base:,.0f}/s)")
    print(f"  ratio billing run / baseline time: {elapsed / base:.1f}x")
    print(f"  rerun: {rerun_elapsed:.2f} s, {rerun.invoiced} invoices created")


if __name__ == "__main__":
    main()
