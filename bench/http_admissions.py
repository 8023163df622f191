"""Admissions per second over HTTP, beside the same server's /healthz with the same load tool.

Starts `farebox serve` (uvicorn) on a fresh SQLite database (or PostgreSQL with
--engine postgres), then drives it with an asyncio httpx client at a fixed
concurrency.

    .venv/bin/python bench/http_admissions.py [--engine sqlite|postgres] [-n 3000] [-c 16] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from _setup import database, farebox, report, served, tenant  # noqa: E402

HEADERS = {"Authorization": "Bearer bench-operator-key"}


async def drive(base: str, n: int, concurrency: int, make) -> float:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        counter = iter(range(n))

        async def worker() -> None:
            for i in counter:
                method, path, body = make(i)
                r = await client.request(method, path, json=body, headers=HEADERS)
                assert r.status_code == 200, r.text

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="sqlite", choices=["sqlite", "postgres"])
    ap.add_argument("-n", type=int, default=3000)
    ap.add_argument("-c", type=int, default=16)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    url, drop = database(args.engine)
    fb = farebox(url)
    tenant(fb, "bench", "attendee-credits", "enterprise")
    fb.engine.dispose()
    try:
        with served(url, workers=args.workers) as base:
            asyncio.run(drive(base, 200, args.c, lambda i: ("GET", "/healthz", None)))  # warm-up
            health = asyncio.run(drive(base, args.n, args.c, lambda i: ("GET", "/healthz", None)))
            joins = asyncio.run(
                drive(
                    base,
                    args.n,
                    args.c,
                    lambda i: ("POST", f"/v1/tenants/bench/occurrences/o{i % 10}/join", {"person_id": f"p{i}"}),
                )
            )
    finally:
        drop()
    report(
        f"HTTP, {args.engine}, uvicorn workers={args.workers}, concurrency {args.c}, n={args.n} (counted joins)",
        [
            ("admission decisions/s", args.n / joins, "/s"),
            ("/healthz requests/s (baseline)", args.n / health, "/s"),
            ("ratio admissions / healthz", 100 * health / joins, "%"),
        ],
    )


if __name__ == "__main__":
    main()
