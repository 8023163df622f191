"""Current usage of a tenant: p50/p99 of `usage_summary` at 10 thousand events and at
a large number (default 1 million; `--events 10000000` for the PRODUCT.md figure),
in the same run.  Counters are kept as usage happens, so the read never scans events.

    .venv/bin/python bench/usage_read.py [--engine sqlite|postgres] [--events 1000000] [--reads 500]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _setup import START, database, farebox, pct, report, tenant  # noqa: E402
from sqlalchemy import insert, update  # noqa: E402

from farebox.kernel.access import SYSTEM  # noqa: E402
from farebox.metering.services import admission, usage  # noqa: E402
from farebox.storage.tables.metering import usage_counters, usage_records  # noqa: E402
from farebox.subscriptions import db as subs_repo  # noqa: E402


def load_events(fb, tenant_id: str, n: int) -> None:
    """n counted units in the ledger and the counter (as if admitted), written in bulk."""
    admission.message(fb, SYSTEM, tenant_id, "seed", sender="customer")
    with fb.uow() as uow:
        sub = subs_repo.current(uow.conn, tenant_id)
        chunk = 50_000
        for start in range(1, n, chunk):
            rows = [
                {
                    "tenant_id": tenant_id,
                    "id": f"u{i:09d}",
                    "subscription_id": sub.id,
                    "meter": "sessions",
                    "period_start_at": sub.period.start,
                    "subject": f"conversation:c{i}",
                    "person_id": None,
                    "units": 1,
                    "at": START + timedelta(seconds=i % 86400),
                    "cause": "bench",
                }
                for i in range(start, min(n, start + chunk))
            ]
            uow.conn.execute(insert(usage_records), rows)
        uow.conn.execute(update(usage_counters).where(usage_counters.c.tenant_id == tenant_id).values(used=n))
        uow.commit()


def reads(fb, tenant_id: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        summary = usage.usage_summary(fb, SYSTEM, tenant_id)
        out.append(time.perf_counter() - t0)
        assert summary.meters
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="sqlite", choices=["sqlite", "postgres"])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--reads", type=int, default=500)
    args = ap.parse_args()
    url, drop = database(args.engine)
    try:
        fb = farebox(url)
        tenant(fb, "small", "agent-sessions", "enterprise")
        tenant(fb, "large", "agent-sessions", "enterprise")
        load_events(fb, "small", 10_000)
        t0 = time.perf_counter()
        load_events(fb, "large", args.events)
        loaded = time.perf_counter() - t0
        reads(fb, "small", 50)
        small = reads(fb, "small", args.reads)
        large = reads(fb, "large", args.reads)
        verify_t0 = time.perf_counter()
        assert usage.verify(fb, SYSTEM) == []
        verify_s = time.perf_counter() - verify_t0
        fb.engine.dispose()
    finally:
        drop()
    report(
        f"current usage read, {args.engine}: 10,000 events vs {args.events:,} events ({args.reads} reads each; loading "
        f"took {loaded:.0f} s)",
        [
            ("p50 at 10 thousand (baseline)", pct(small, 0.5) * 1000, "ms"),
            ("p99 at 10 thousand (baseline)", pct(small, 0.99) * 1000, "ms"),
            (f"p50 at {args.events:,}", pct(large, 0.5) * 1000, "ms"),
            (f"p99 at {args.events:,}", pct(large, 0.99) * 1000, "ms"),
            ("ratio p99 large / small", 100 * pct(large, 0.99) / pct(small, 0.99), "%"),
            ("usage verify over all events (s)", verify_s, "s"),
        ],
    )


if __name__ == "__main__":
    main()
