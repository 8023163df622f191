"""`farebox reprice --all` over many tenants of recorded usage (docs/repricing.md, docs/performance.md).

    .venv/bin/python bench/reprice_all.py [N]          # default N = 10000 tenants

Loads N tenants into a fresh SQLite database: a third on each bundled
catalog (session-caps pro, attendee-credits pro, agent-sessions sme), six
months of history each (subscription, invoices with their lines, ledger rows,
occurrences), one tenant in 100 with a heavy month; then times the
repricing of every tenant under `attendee-credits` (the service `reprice --all`
calls, batches of 500), then the command itself in a new process.  The baseline, measured in the same run on the same
file, is the bare `sqlite3` module reading and summing the same rows: ledger
units per tenant, meter and month, occurrences per tenant and month, invoice
lines per tenant and month.  The ratio is repricing time / baseline time.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from farebox.bootstrap import Farebox
from farebox.catalog.service import offered_plan
from farebox.demo import data as demo
from farebox.kernel.access import SYSTEM
from farebox.kernel.clock import FrozenClock
from farebox.kernel.periods import add_months, utc
from farebox.repricing import service as reprice
from farebox.settings import Settings
from farebox.storage.engine import make_engine
from farebox.storage.migrate import upgrade
from farebox.storage.tables.core import tenants, test_clocks
from farebox.storage.tables.invoicing import invoice_lines, invoices
from farebox.storage.tables.metering import occurrences, usage_records
from farebox.storage.tables.subscriptions import subscriptions

START = utc(2026, 6, 1, 9)
NOW = utc(2026, 12, 1, 8)  # six monthly periods, the last one nearly over
PROFILES = (
    # catalog, plan, meter, currency, price (minor), months per period
    ("session-caps", "pro", "attendees", "USD", 2900, 1),
    ("attendee-credits", "pro", "credits", "USD", 118800, 12),
    ("agent-sessions", "sme", "sessions", "EUR", 15000, 1),
)


def _flush(conn, buffers: dict, force: bool = False) -> None:
    """Write every buffer, parents first (the dict's order), once any is big enough."""
    if force or any(len(rows) >= 20_000 for rows in buffers.values()):
        for table, rows in buffers.items():
            if rows:
                conn.execute(table.insert(), rows)
                rows.clear()


def load(fb: Farebox, n: int) -> int:
    """N tenants of recorded usage; returns the number of ledger rows."""
    rng = random.Random(8)
    ledger = 0
    with fb.uow() as uow:
        conn = uow.conn
        versions = {(c, p): offered_plan(conn, c, p).version_id for c, p, *_ in PROFILES}
        conn.execute(
            test_clocks.insert(), [{"id": "clk_bench", "name": "bench", "now_at": NOW, "created_at": START}]
        )  # the CLI sees the same now
        buffers: dict = {t: [] for t in (tenants, subscriptions, invoices, invoice_lines, usage_records, occurrences)}
        for i in range(n):
            tenant_id = f"t{i:06d}"
            catalog, plan, meter, currency, price, months = PROFILES[i % 3]
            sub = f"sub_{tenant_id}"
            buffers[tenants].append(
                {
                    "id": tenant_id,
                    "name": tenant_id,
                    "tax_rate_bp": 0,
                    "created_at": START,
                    "test_clock_id": "clk_bench",
                }
            )
            buffers[subscriptions].append(
                {
                    "tenant_id": tenant_id,
                    "id": sub,
                    "plan_version_id": versions[(catalog, plan)],
                    "status": "active",
                    "anchor_at": START,
                    "period_start_at": add_months(START, 6 if months == 1 else 0),
                    "period_end_at": add_months(START, 7 if months == 1 else 12),
                    "starts_at": START,
                    "created_at": START,
                    "cancel_at_period_end": False,
                    "row_version": 1,
                    "settings": {},
                }
            )
            for k in range(0, 6, months):
                start, end = add_months(START, k), add_months(START, k + months)
                invoice = f"inv_{tenant_id}_{k}"
                buffers[invoices].append(
                    {
                        "tenant_id": tenant_id,
                        "id": invoice,
                        "billing_key": invoice,
                        "number": f"B-{i}-{k}",
                        "subscription_id": sub,
                        "kind": "renewal",
                        "status": "paid",
                        "currency": currency,
                        "subtotal_minor": price,
                        "tax_rate_bp": 0,
                        "tax_minor": 0,
                        "total_minor": price,
                        "bill_to": {},
                        "period_start_at": start,
                        "period_end_at": end,
                        "issued_at": start,
                        "paid_at": start,
                        "cause": "bench",
                    }
                )
                buffers[invoice_lines].append(
                    {
                        "tenant_id": tenant_id,
                        "invoice_id": invoice,
                        "position": 1,
                        "key": f"fee:{sub}:{k}",
                        "kind": "fee",
                        "description": plan,
                        "subscription_id": sub,
                        "plan_version_id": versions[(catalog, plan)],
                        "quantity": 1,
                        "unit_amount_minor": price,
                        "amount_minor": price,
                        "period_start_at": start,
                        "period_end_at": end,
                        "service_start_at": start,
                        "service_end_at": end,
                    }
                )
            for month in range(6):
                heavy = i % 100 == 0 and month == 2
                count = 1300 if heavy else rng.randint(2, 18)
                base = add_months(START, month) + timedelta(days=1)
                if meter == "sessions":
                    at = [base + timedelta(hours=h % 600) for h in range(count)]
                    subjects = [f"conversation:c{month}_{h}" for h in range(count)]
                else:
                    occ = f"o{month}"
                    at = [base] * count
                    subjects = [f"occurrence:{occ}"] * count
                    buffers[occurrences].append(
                        {
                            "tenant_id": tenant_id,
                            "id": occ,
                            "subscription_id": sub,
                            "started_at": base,
                            "counted": count,
                            "present": 0,
                            "peak": count,
                            "queue_tail": 0,
                            "created_at": base,
                        }
                    )
                for j, (when, subject) in enumerate(zip(at, subjects, strict=True)):
                    buffers[usage_records].append(
                        {
                            "tenant_id": tenant_id,
                            "id": f"u{month}_{j}",
                            "subscription_id": sub,
                            "meter": meter,
                            "period_start_at": START,
                            "subject": subject,
                            "person_id": f"p{j}",
                            "units": 1,
                            "at": when,
                            "cause": "bench",
                        }
                    )
                ledger += count
            _flush(conn, buffers)
        _flush(conn, buffers, force=True)
        uow.commit()
    return ledger


def baseline(path: Path) -> float:
    """Bare sqlite3: the same rows read and summed per tenant and month."""
    conn = sqlite3.connect(path)
    started = time.perf_counter()
    conn.execute("SELECT tenant_id, meter, substr(at, 1, 7), sum(units) FROM usage_records GROUP BY 1, 2, 3").fetchall()
    conn.execute(
        "SELECT tenant_id, substr(started_at, 1, 7), count(*), max(counted), max(peak) FROM occurrences WHERE "
        "started_at IS NOT NULL GROUP BY 1, 2"
    ).fetchall()
    conn.execute(
        "SELECT l.tenant_id, i.currency, substr(l.service_start_at, 1, 7), sum(l.amount_minor) FROM invoice_lines l "
        "JOIN invoices i ON i.tenant_id = l.tenant_id AND i.id = l.invoice_id WHERE i.status != 'void' GROUP BY 1, 2, 3"
    ).fetchall()
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        url = f"sqlite:///{path}"
        engine = make_engine(url)
        upgrade(engine)
        fb = Farebox(engine=engine, clock=FrozenClock(NOW), settings=Settings(database_url=url))
        demo.load_catalogs(fb)
        loading = time.perf_counter()
        rows = load(fb, n)
        loading = time.perf_counter() - loading
        base = baseline(path)
        done = [0]
        started = time.perf_counter()
        summary = reprice.reprice_all(
            fb, SYSTEM, catalog="attendee-credits", on_progress=lambda k: done.__setitem__(0, done[0] + k)
        )
        elapsed = time.perf_counter() - started
        fb.engine.dispose()
        env = {**os.environ, "FAREBOX_DATABASE_URL": url, "COLUMNS": "250"}
        started = time.perf_counter()
        cli = subprocess.run(
            [sys.executable, "-m", "farebox", "reprice", "--all", "--catalog", "attendee-credits"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        cli_elapsed = time.perf_counter() - started
    assert summary.tenants == n == done[0], (summary.tenants, done[0])
    print(f"loaded {n:,} tenants, {rows:,} ledger rows in {loading:.1f} s")
    print(
        f"reprice --all under attendee-credits, SQLite, {n:,} tenants: {elapsed:.2f} s ({n / elapsed:,.0f} tenants/s)"
    )
    print(
        f"  change: {', '.join(f'{c} {summary.change(c) / 100:+,.2f}' for c in sorted(summary.would_pay))}; "
        f"{summary.other_currency:,} in another currency; {len(summary.hitting_limits):,} would hit a limit"
    )
    print(
        f"  the command itself, `farebox reprice --all --catalog attendee-credits` (a new process, progress bar): "
        f"{cli_elapsed:.2f} s"
    )
    print("   ", "\n    ".join(line for line in cli.stdout.splitlines() if "tenant(s)" in line))
    print(f"  baseline, bare sqlite3 reading and summing the same rows per tenant and month: {base:.2f} s")
    print(f"  ratio repricing / baseline time: {elapsed / base:.1f}x")


if __name__ == "__main__":
    main()
