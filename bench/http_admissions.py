"""Admissions per second over HTTP, beside the same server's /healthz with the same load tool.

Starts `farebox serve` (uvicorn) on a fresh SQLite database (or PostgreSQL with
--engine postgres), then drives it with an asyncio httpx client at a fixed
concurrency, or with autocannon (`--autocannon`, from npm through `npx`; a
load generator far faster than the server, so it is not the bottleneck):
`/healthz` first, then counted joins of distinct people (autocannon's `[<id>]`)
into one occurrence, authenticated with a tenant key as a platform would be.
With autocannon it also prints the server's CPU time per request (its
processes' user + system time over the run, from `/proc`): on a shared machine
that ratio moves far less than the rates do.

    .venv/bin/python bench/http_admissions.py [--engine sqlite|postgres] [-n 3000] [-c 16] [--workers 1]
    .venv/bin/python bench/http_admissions.py --autocannon -c 32 -d 10 [--engine postgres --workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from _setup import database, farebox, report, served, server_cpu_seconds, tenant  # noqa: E402

from farebox.kernel.access import SYSTEM, Role  # noqa: E402
from farebox.tenants.services import tenants  # noqa: E402

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


def autocannon(base: str, path: str, *, connections: int, seconds: int, body: str | None, key: str) -> dict:
    """One autocannon run (the one on PATH, `npm install -g autocannon`, else through npx); its JSON summary."""
    cmd = [
        *(["autocannon"] if shutil.which("autocannon") else ["npx", "-y", "autocannon"]),
        "-j",
        "-c",
        str(connections),
        "-d",
        str(seconds),
        "-H",
        f"Authorization=Bearer {key}",
    ]
    if body is not None:
        cmd += ["-m", "POST", "-H", "Content-Type=application/json", "-b", body, "-I"]
    out = subprocess.run([*cmd, base + path], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


# The load tool's own ceiling on this machine: a bare node HTTP server answering a fixed body.
BARE_NODE = "require('http').createServer((q, r) => r.end('ok')).listen(+process.argv[1], '127.0.0.1')"


def tool_ceiling(args: argparse.Namespace, key: str) -> dict:
    """autocannon against a bare node server: what the tool reaches when the server costs nearly nothing."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(["node", "-e", BARE_NODE, str(port)])
    try:
        time.sleep(1)
        return autocannon(f"http://127.0.0.1:{port}", "/", connections=args.c, seconds=args.d, body=None, key=key)
    finally:
        server.terminate()
        server.wait(timeout=10)


def with_autocannon(base: str, args: argparse.Namespace, key: str) -> None:
    autocannon(base, "/healthz", connections=args.c, seconds=2, body=None, key=key)  # warm-up

    def measured(path: str, body: str | None) -> tuple[dict, float]:
        """autocannon's summary and the server's CPU time per request during it."""
        before = server_cpu_seconds(base)
        r = autocannon(base, path, connections=args.c, seconds=args.d, body=body, key=key)
        return r, (server_cpu_seconds(base) - before) / max(r["requests"]["total"], 1)

    health, health_cpu = measured("/healthz", None)
    joins, joins_cpu = measured("/v1/tenants/bench/occurrences/o1/join", '{"person_id": "p-[<id>]"}')
    ceiling = tool_ceiling(args, key)
    for name, r in (("load tool on a bare node server", ceiling), ("healthz", health), ("joins", joins)):
        bad = r["errors"] + r["timeouts"] + r.get("non2xx", 0)
        print(f"{name}: {r['requests']['average']:.0f} req/s, p50 {r['latency']['p50']} ms, "
              f"p99 {r['latency']['p99']} ms, {r['requests']['total']} requests, {bad} errors/timeouts/non-2xx")
    rate = joins["requests"]["average"] / health["requests"]["average"]
    tail = joins["latency"]["p99"] / max(health["latency"]["p99"], 1)
    print(f"ratio joins / healthz: {100 * rate:.1f} % of the rate; p99 {tail:.1f}x healthz's")
    print(f"server CPU per request: healthz {health_cpu * 1e6:.0f} µs, join {joins_cpu * 1e6:.0f} µs; "
          f"ratio {100 * health_cpu / max(joins_cpu, 1e-9):.1f} % (a figure the machine's other load hardly moves)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="sqlite", choices=["sqlite", "postgres"])
    ap.add_argument("-n", type=int, default=3000)
    ap.add_argument("-c", type=int, default=16)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--autocannon", action="store_true", help="drive the server with autocannon (npx) instead")
    ap.add_argument("-d", type=int, default=10, help="seconds per autocannon run")
    args = ap.parse_args()
    url, drop = database(args.engine)
    fb = farebox(url)
    tenant(fb, "bench", "attendee-credits", "enterprise")
    key = tenants.issue_api_key(fb, SYSTEM, tenant_id="bench", role=Role.MEMBER).secret
    fb.engine.dispose()
    if args.autocannon:
        try:
            with served(url, workers=args.workers) as base:
                with_autocannon(base, args, key)
        finally:
            drop()
        return
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
