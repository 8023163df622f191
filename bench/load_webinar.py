"""Load test: a webinar of 3,000 attendees joining within a minute, plus a stream of
conversation messages, against `farebox serve` on loopback (issue 9, item 7).

The server runs in its own process(es) (`farebox serve`, on a fresh SQLite database, or
PostgreSQL with --engine postgres); this script is the load generator, `farebox.client`'s
AsyncClient (httpx) in another process, as a platform would integrate: every join and message
carries its own Idempotency-Key.  The client's retries are off here, so an error is counted,
not hidden.  Two phases, each beside a baseline of the same server's
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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from _setup import database, farebox, pct, served, tenant  # noqa: E402

from farebox.client import AsyncClient, Decision, FareboxError, RetryPolicy  # noqa: E402
from farebox.clocks.system import SystemClock  # noqa: E402

KEY = "bench-operator-key"
Op = Callable[[AsyncClient], Awaitable[Decision | bool]]  # one request, through the client
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


def _client(base: str, concurrency: int) -> AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return AsyncClient(base, KEY, timeout=60, limits=limits, retry=RetryPolicy(retries=0))


def join(occurrence: str, person: str) -> Op:
    return lambda client: client.join("webinars", occurrence, person)


def message(conversation: str, sender: str) -> Op:
    return lambda client: client.message("agents", conversation, sender=sender)  # type: ignore[arg-type]


def health(client: AsyncClient) -> Awaitable[bool]:
    return client.health()


async def _send(client: AsyncClient, phase: Phase, op: Op, due: float, gate: asyncio.Semaphore | None = None) -> None:
    if gate is not None:  # wait here, not in httpx's pool (whose queue slows down with thousands waiting)
        async with gate:
            return await _send(client, phase, op, due)
    try:
        answer = await op(client)
        if isinstance(answer, Decision):
            phase.reasons[answer.reason] += 1
    except FareboxError as exc:
        phase.errors[f"HTTP {exc.status_code}"] += 1
    except httpx.HTTPError as exc:
        phase.errors[type(exc).__name__] += 1
    phase.latencies.append(time.perf_counter() - due)


async def open_loop(base: str, schedule: list[tuple[float, Phase, Op]], concurrency: int) -> None:
    """Send each request at its time (seconds from the start), at most `concurrency` in flight."""
    async with _client(base, concurrency) as client:
        gate = asyncio.Semaphore(concurrency)
        start = time.perf_counter()
        tasks = []
        for at, phase, op in schedule:
            delay = start + at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if time.perf_counter() - start > TIME_LIMIT:
                break
            tasks.append(asyncio.create_task(_send(client, phase, op, start + at, gate)))
        await asyncio.gather(*tasks)
        for phase in {s[1].name: s[1] for s in schedule}.values():
            phase.elapsed = time.perf_counter() - start


async def closed_loop(base: str, phase: Phase, requests: list[Op], concurrency: int) -> None:
    async with _client(base, concurrency) as client:
        pending = iter(requests)
        start = time.perf_counter()

        async def worker() -> None:
            for op in pending:
                if time.perf_counter() - start > TIME_LIMIT:
                    return
                await _send(client, phase, op, time.perf_counter())

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
        tenant(fb, tenant_id, catalog, plan)
    fb.engine.dispose()

    rng = random.Random(args.seed)
    try:
        with served(url, workers=args.workers, key=KEY) as base:
            asyncio.run(closed_loop(base, Phase("warm-up"), [health] * 200, 8))

            # 1. the replay, at the webinar's pace, then /healthz on the same schedule
            joins, messages = Phase("webinar joins"), Phase("conversation messages")
            health_phase = Phase("/healthz, same schedule (baseline)")
            schedule: list[tuple[float, Phase, Op]] = [
                (at, joins, join("webinar-1", f"attendee-{i}"))
                for i, at in enumerate(arrivals(args.attendees, args.duration, rng))
            ]
            n_messages = int(args.message_rate * args.duration)
            schedule += [
                (args.duration * i / max(n_messages, 1), messages,
                 message(f"conv-{rng.randrange(args.conversations)}", rng.choice(["customer", "agent"])))
                for i in range(n_messages)
            ]
            schedule.sort(key=lambda s: s[0])
            asyncio.run(open_loop(base, schedule, args.concurrency))
            asyncio.run(open_loop(base, [(at, health_phase, health) for at, *_ in schedule], args.concurrency))

            # 2. saturation: as fast as the connections allow
            rush, rush_health = Phase("joins, closed loop"), Phase("/healthz, closed loop (baseline)")
            rush_joins = [join("webinar-2", f"attendee-{i}") for i in range(args.attendees)]
            asyncio.run(closed_loop(base, rush, rush_joins, args.concurrency))
            asyncio.run(closed_loop(base, rush_health, [health] * args.attendees, args.concurrency))
    finally:
        drop()

    replay_rate = (joins.done + messages.done) / joins.elapsed
    health_p99 = pct(health_phase.latencies, 0.99)
    print(
        f"\nwebinar replay: {args.attendees} attendees over {args.duration:.0f} s + {n_messages} messages, "
        f"{args.engine}, "
        f"uvicorn workers={args.workers}, {args.concurrency} connections, generator: 1 asyncio process"
    )
    for phase in (joins, messages, health_phase):
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
