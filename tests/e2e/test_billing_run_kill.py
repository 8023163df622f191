"""`farebox bill` killed with SIGKILL half-way and run again: exactly one invoice per subscription and period (G13)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from farebox.storage.engine import make_engine
from farebox.storage.tables.invoicing import invoices

from support import subprocess_env

ROOT = Path(__file__).resolve().parents[2]
N = 400


def _count(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(invoices)).scalar_one()
            distinct = conn.execute(select(func.count(func.distinct(invoices.c.billing_key)))).scalar_one()
        return total, distinct
    finally:
        engine.dispose()


def _fast_count(path: Path) -> int:
    conn = sqlite3.connect(path, timeout=30)
    try:
        return conn.execute("SELECT count(*) FROM invoices").fetchone()[0]
    finally:
        conn.close()


def test_G13_billing_run_killed_halfway_then_rerun_bills_each_subscription_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import billing_run as bench
    finally:
        sys.path.pop(0)
    bench.setup(url, N).engine.dispose()
    env = subprocess_env(FAREBOX_DATABASE_URL=url, FAREBOX_PAYMENT_PROVIDER="sandbox")
    child = subprocess.Popen([sys.executable, "-m", "farebox", "bill", "--batch-size", "25"], env=env, cwd=tmp_path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while _fast_count(tmp_path / "kill.db") < 25 and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    cut, _ = _count(url)
    assert 0 < cut < N, "the run should have been killed half-way"
    done = subprocess.run(
        [sys.executable, "-m", "farebox", "bill"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert _count(url) == (N, N)
    again = subprocess.run(
        [sys.executable, "-m", "farebox", "bill"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert "issued 0 invoice(s)" in again.stdout
    assert _count(url) == (N, N)
