"""Admissions per second over HTTP, beside the same server's /healthz with the same load tool.

Starts `farebox serve` (uvicorn) on a fresh SQLite database (or PostgreSQL with
--engine postgres), then drives it with an asyncio httpx client at a fixed
concurrency.

    .venv/bin/python bench/http_admissions.py [--engine sqlite|postgres] [-n 3000] [-c 16] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from _setup import database, farebox, report, tenant  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"
HEADERS = {"Authorization": "Bearer bench-operator-key"}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAREBOX_")}
    env.update(PYTHONPATH=str(SRC), FAREBOX_DATABASE_URL=url, FAREBOX_OPERATOR_KEY="bench-operator-key", FAREBOX_LOG_LEVEL="warning")
    server = subprocess.Popen([sys.executable, "-m", "farebox", "serve", "--port", str(port), "--workers", str(args.workers)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
            assert time.monotonic() < deadline
        asyncio.run(drive(base, 200, args.c, lambda i: ("GET", "/healthz", None)))  # warm-up
        health = asyncio.run(drive(base, args.n, args.c, lambda i: ("GET", "/healthz", None)))
        joins = asyncio.run(drive(base, args.n, args.c, lambda i: ("POST", f"/v1/tenants/bench/occurrences/o{i % 10}/join", {"person_id": f"p{i}"})))
    finally:
        server.terminate()
        server.wait(timeout=20)
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
