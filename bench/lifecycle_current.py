"""How fast metering's hot path reads a tenant's subscription and asks the lifecycle
whether it may admit: `repos.subscriptions.current` + `admission_refusal`, beside
the bare `sqlite3` SELECT of the same row in the same run (a ratio, because these
machines are noisy).  Each tenant has a history (plan changes, a cancellation)
so the lookup has rows to skip.

    .venv/bin/python bench/lifecycle_current.py [--tenants 200] [--reads 20000]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from farebox.bootstrap import Farebox
from farebox.demo import data as demo
from farebox.kernel.access import SYSTEM
from farebox.kernel.clock import FrozenClock
from farebox.kernel.periods import utc
from farebox.payments import service as payments
from farebox.payments.providers.sandbox import SUCCEEDS as GOOD_CARD
from farebox.settings import Settings
from farebox.storage.engine import make_engine
from farebox.storage.migrate import upgrade
from farebox.subscriptions import db as repo
from farebox.subscriptions.domain.states import admission_refusal
from farebox.subscriptions.services import subscriptions
from farebox.tenants.services import tenants


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--reads", type=int, default=20000)
    args = parser.parse_args()
    path = Path(tempfile.mkdtemp()) / "bench.db"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    clock = FrozenClock(utc(2026, 1, 5, 9))
    fb = Farebox(engine=engine, clock=clock, settings=Settings(database_url=url, operator_key="k"))
    demo.load_catalogs(fb)
    ids = [f"t{i}" for i in range(args.tenants)]
    for tenant in ids:
        tenants.create_tenant(fb, SYSTEM, tenant_id=tenant, name=tenant, owner_email=f"o@{tenant}.test")
        payments.add_payment_method(fb, SYSTEM, tenant, token=GOOD_CARD)
        subscriptions.subscribe(fb, SYSTEM, tenant, catalog="session-caps", plan="pro")
        subscriptions.change_plan(fb, SYSTEM, tenant, plan="pro_plus")
        subscriptions.change_plan(fb, SYSTEM, tenant, plan="pro", when="immediately")
        subscriptions.change_plan(fb, SYSTEM, tenant, plan="pro_plus")
    now = clock.now() + timedelta(days=1)

    held = engine.connect()  # like the raw baseline, one connection held open

    def farebox_read(tenant: str) -> None:
        admission_refusal(repo.current(held, tenant), now)

    raw = sqlite3.connect(path, check_same_thread=False)

    def raw_read(tenant: str) -> None:
        raw.execute(
            "SELECT * FROM subscriptions WHERE tenant_id = ? AND status IN "
            "('free','trialing','active','payment_issue','cancellation_scheduled') LIMIT 1",
            (tenant,),
        ).fetchone()

    results = {}
    for name, fn in (
        ("raw sqlite3 SELECT", raw_read),
        ("repos.subscriptions.current + admission_refusal", farebox_read),
    ):
        latencies = []
        start = time.perf_counter()
        for i in range(args.reads):
            t0 = time.perf_counter()
            fn(ids[i % len(ids)])
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
        q = statistics.quantiles(latencies, n=100)
        p50, p99 = q[49] * 1000, q[98] * 1000
        results[name] = args.reads / elapsed
        print(f"{name:52s} {args.reads / elapsed:10,.0f} reads/s   p50 {p50:.3f} ms   p99 {p99:.3f} ms")
    held.close()
    base, ours = results.values()
    print(f"ratio farebox / raw: {ours / base:.2f}")


if __name__ == "__main__":
    main()
