"""Load test: a webinar of 3,000 attendees joining within a minute, plus a stream of
conversation messages, against `farebox serve` on loopback (issue 9, item 7).

The server runs in its own process(es) (`farebox serve`, on a fresh SQLite database, or
PostgreSQL with --engine postgres); this script is the load generator, an asyncio httpx
client in another process.  Two phases, each beside a baseline of the same server's
`/healthz` driven the same way in the same run:

1. replay: the webinar at its real pace (open loop): attendee i is sent at its arrival
   time, spread over --duration seconds (3,000 in 60 s: 50 joins/s), while conversation
   messages arrive at --message-rate per second; then /healthz on the same schedule.
   Reports achieved throughput, p50/p99 latency (from the moment each request was due,
   so a client or server falling behind shows), errors, and the answers' reasons.
2. saturation (closed loop): the same number of joins into a second occurrence as fast as
   --concurrency connections allow, then as many /healthz: the highest rate, as a ratio.

    .venv/bin/python bench/load_webinar.py [--engine sqlite|postgres] [--attendees 3000] [--duration 60]
        [--message-rate 10] [--concurrency 32] [--workers 1]

Stops by itself: every loop is bounded by the request count and a time limit, and only
127.0.0.1 is addressed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from _setup import database, farebox, pct, served  # noqa: E402

from farebox.adapters.clock import SystemClock  # noqa: E402
from farebox.domain.access import SYSTEM  # noqa: E402
from farebox.services import subscriptions, tenants  # noqa: E402

KEY = "bench-operator-key"
HEADERS = {"Authorization": f"Bearer {KEY}"}
TIME_LIMIT = 600.0  # seconds: no phase runs longer, whatever the server does


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0

    @property
    def done(self) -> int:
        return len(self.latencies)

    def line(self) -> str:
        ok = self.done - sum(self.errors.values())
        rate = self.done / self.elapsed if self.elapsed else 0.0
        p50, p99 = (
            (1000 * pct(self.latencies, 0.50), 1000 * pct(self.latencies, 0.99)) if self.latencies else (0.0, 0.0)
        )
        errors = sum(self.errors.values())
        return (
            f"  {self.name:<34} {self.done:>6} req {rate:>8.1f}/s  p50 {p50:>7.1f} ms  p99 {p99:>7.1f} ms  "
            f"errors {errors} ({ok} ok)"
        )


async def _send(
    client: httpx.AsyncClient,
    phase: Phase,
    method: str,
    path: str,
    body: dict | None,
    due: float,
    gate: asyncio.Semaphore | None = None,
) -> None:
    if gate is not None:  # wait here, not in httpx's pool (whose queue slows down with thousands waiting)
        async with gate:
            return await _send(client, phase, method, path, body, due)
    try:
        response = await client.request(method, path, json=body, headers=HEADERS)
        if response.status_code != 200:
            phase.errors[f"HTTP {response.status_code}"] += 1
        elif path != "/healthz":
            phase.reasons[response.json()["reason"]] += 1
    except httpx.HTTPError as exc:
        phase.errors[type(exc).__name__] += 1
    phase.latencies.append(time.perf_counter() - due)


async def open_loop(base: str, schedule: list[tuple[float, Phase, str, str, dict | None]], concurrency: int) -> None:
    """Send each request at its time (seconds from the start), at most `concurrency` in flight."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        gate = asyncio.Semaphore(concurrency)
        start = time.perf_counter()
        tasks = []
        for at, phase, method, path, body in schedule:
            delay = start + at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if time.perf_counter() - start > TIME_LIMIT:
                break
            tasks.append(asyncio.create_task(_send(client, phase, method, path, body, start + at, gate)))
        await asyncio.gather(*tasks)
        for phase in {s[1].name: s[1] for s in schedule}.values():
            phase.elapsed = time.perf_counter() - start


async def closed_loop(base: str, phase: Phase, requests: list[tuple[str, str, dict | None]], concurrency: int) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        pending = iter(requests)
        start = time.perf_counter()

        async def worker() -> None:
            for method, path, body in pending:
                if time.perf_counter() - start > TIME_LIMIT:
                    return
                await _send(client, phase, method, path, body, time.perf_counter())

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        phase.elapsed = time.perf_counter() - start


def arrivals(n: int, duration: float, rng: random.Random) -> list[float]:
    """n arrival times within `duration`: most people arrive around the start time (a webinar's rush)."""
    return sorted(min(duration, max(0.0, rng.triangular(0, duration, duration * 0.15))) for _ in range(n))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", default="sqlite", choices=["sqlite", "postgres"])
    ap.add_argument("--attendees", type=int, default=3000)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds over which the attendees arrive")
    ap.add_argument(
        "--message-rate", type=float, default=10.0, help="conversation messages per second during the replay"
    )
    ap.add_argument("--conversations", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=32, help="connections the generator keeps open")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes of the server")
    ap.add_argument("--seed", type=int, default=9)
    args = ap.parse_args()

    url, drop = database(args.engine)
    fb = farebox(url)
    fb.clock = SystemClock()  # the server lives on the real clock: subscribe now
    for tenant_id, catalog, plan in (
        ("webinars", "session-caps", "business"),
        ("agents", "agent-sessions", "enterprise"),
    ):
        tenants.create_tenant(fb, SYSTEM, tenant_id=tenant_id, name=tenant_id, owner_email=f"owner@{tenant_id}.test")
        subscriptions.subscribe(fb, SYSTEM, tenant_id, catalog=catalog, plan=plan, cause="load test")
    fb.engine.dispose()

    rng = random.Random(args.seed)
    try:
        with served(url, workers=args.workers, key=KEY) as base:
            asyncio.run(closed_loop(base, Phase("warm-up"), [("GET", "/healthz", None)] * 200, 8))

            # 1. the replay, at the webinar's pace, then /healthz on the same schedule
            joins, messages, health = (
                Phase("webinar joins"),
                Phase("conversation messages"),
                Phase("/healthz, same schedule (baseline)"),
            )
            schedule = [
                (at, joins, "POST", "/v1/tenants/webinars/occurrences/webinar-1/join", {"person_id": f"attendee-{i}"})
                for i, at in enumerate(arrivals(args.attendees, args.duration, rng))
            ]
            n_messages = int(args.message_rate * args.duration)
            schedule += [
                (
                    args.duration * i / max(n_messages, 1),
                    messages,
                    "POST",
                    f"/v1/tenants/agents/conversations/conv-{rng.randrange(args.conversations)}/messages",
                    {"from": rng.choice(["customer", "agent"])},
                )
                for i in range(n_messages)
            ]
            schedule.sort(key=lambda s: s[0])
            asyncio.run(open_loop(base, schedule, args.concurrency))
            asyncio.run(
                open_loop(base, [(at, health, "GET", "/healthz", None) for at, *_ in schedule], args.concurrency)
            )

            # 2. saturation: as fast as the connections allow
            rush, rush_health = Phase("joins, closed loop"), Phase("/healthz, closed loop (baseline)")
            asyncio.run(
                closed_loop(
                    base,
                    rush,
                    [
                        ("POST", "/v1/tenants/webinars/occurrences/webinar-2/join", {"person_id": f"attendee-{i}"})
                        for i in range(args.attendees)
                    ],
                    args.concurrency,
                )
            )
            asyncio.run(closed_loop(base, rush_health, [("GET", "/healthz", None)] * args.attendees, args.concurrency))
    finally:
        drop()

    replay_rate = (joins.done + messages.done) / joins.elapsed
    health_p99 = pct(health.latencies, 0.99)
    print(
        f"\nwebinar replay: {args.attendees} attendees over {args.duration:.0f} s + {n_messages} messages, "
        f"{args.engine}, "
        f"uvicorn workers={args.workers}, {args.concurrency} connections, generator: 1 asyncio process"
    )
    for phase in (joins, messages, health):
        print(phase.line())
    print(
        f"  replay throughput (joins + messages)  {replay_rate:.1f}/s; errors "
        f"{sum(joins.errors.values()) + sum(messages.errors.values())} {dict(joins.errors + messages.errors)}"
    )
    print(f"  join answers: {dict(joins.reasons)}; message answers: {dict(messages.reasons)}")
    print(f"  p99 joins / p99 /healthz (same schedule)   {pct(joins.latencies, 0.99) / health_p99:.2f}x")
    print(f"\nsaturation: {args.attendees} joins as fast as {args.concurrency} connections allow")
    for phase in (rush, rush_health):
        print(phase.line())
    print(f"  join answers: {dict(rush.reasons)}")
    print(
        f"  throughput joins / /healthz               "
        f"{100 * (rush.done / rush.elapsed) / (rush_health.done / rush_health.elapsed):.1f} %"
    )


if __name__ == "__main__":
    main()
