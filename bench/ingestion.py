"""Batch ingestion throughput, beside a bare executemany (SQLite) or COPY (PostgreSQL)
of the same rows in the same run.

The mix (issue 13): an events tenant (attendee credits, overage: every new
person counts) sends joins over 100 occurrences, a fifth of them from people
already counted there, and registrations (one in ten events); a chat tenant
(agent sessions) sends conversation messages, half of them into a window
already open.  Each round is one batch of each; then the first batch of each
is sent again (all duplicates).

    .venv/bin/python bench/ingestion.py [--engine sqlite|postgres] [--batches 3] [--size 10000] [--repeat 3] [--http]

Each of `--repeat` runs uses a fresh database and times farebox and the bare
baseline on the same rows, in turn first (a single run's baseline moved by a
third from one run to the next on a shared machine); the medians are reported,
with each run's ratio.

`--http` sends the same rounds again, to a fresh database, over HTTP to
`farebox serve` (one worker process, in its own process), as `farebox.client`
sends a batch (one POST each, with an `Idempotency-Key`), and prints those
rates and the server's CPU time per event beside the in-process ones.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _setup import database, farebox, median, report, served, server_cpu_seconds, tenant  # noqa: E402

from farebox.kernel.access import SYSTEM  # noqa: E402
from farebox.metering.services import ingestion, usage  # noqa: E402


def attendee_events(batch: int, size: int, rng: random.Random, seen: dict[int, list[str]]) -> list[dict]:
    out = []
    for i in range(size):
        occurrence = rng.randrange(100)
        people = seen.setdefault(occurrence, [])
        if i % 10 == 9:
            kind, person = "attendee.registered", f"r{batch}-{i}"
        elif people and rng.random() < 0.2:
            kind, person = "attendee.joined", rng.choice(people)  # a returning person: already counted
        else:
            kind, person = "attendee.joined", f"p{batch}-{i}"
            people.append(person)
        out.append({"id": f"a{batch}-{i}", "source": "logs", "type": kind, "time": None,
                    "data": {"occurrence_id": f"o{occurrence}", "person_id": person, "mode": "replay"}})
    return out


def message_events(batch: int, size: int, rng: random.Random) -> list[dict]:
    out = []
    for i in range(size):
        conversation = f"c{batch}-{i // 2}" if rng.random() < 0.5 else f"c{batch}-{i}"  # half answer an open window
        out.append({"id": f"m{batch}-{i}", "source": "chat", "type": "conversation.message", "time": None,
                    "data": {"conversation_id": conversation, "from": "customer"}})
    return out


def rows(evs: list[dict]) -> list[tuple]:
    return [("bench", e["source"], e["id"], e["type"], json.dumps(e["data"])) for e in evs]


def bare_sqlite(path: str, batches: list[list[dict]]) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE ev (tenant_id TEXT, source TEXT, id TEXT, type TEXT, data TEXT, PRIMARY KEY (tenant_id, source, "
        "id))"
    )
    t0 = time.perf_counter()
    for evs in batches:
        db.execute("BEGIN")
        db.executemany("INSERT INTO ev VALUES (?, ?, ?, ?, ?)", rows(evs))
        db.execute("COMMIT")
    return time.perf_counter() - t0


def bare_copy(url: str, batches: list[list[dict]]) -> float:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as db:
        db.execute(
            "CREATE TABLE bare_ev (tenant_id TEXT, source TEXT, id TEXT, type TEXT, data JSONB, PRIMARY KEY "
            "(tenant_id, source, id))"
        )
        db.commit()
        t0 = time.perf_counter()
        for evs in batches:
            with db.cursor().copy("COPY bare_ev FROM STDIN") as copy:
                for r in rows(evs):
                    copy.write_row(r)
            db.commit()
        return time.perf_counter() - t0


def over_http(engine: str, rounds: list[tuple[list[dict], list[dict]]]) -> tuple[float, float, float]:
    """The rounds, then the first round again, posted to `farebox serve` on a fresh database: (seconds for the new
    events, seconds for the duplicates, the server's CPU seconds for the new events)."""
    import httpx

    url, drop = database(engine)
    try:
        fb = farebox(url)
        tenant(fb, "events", "attendee-credits", "enterprise")
        tenant(fb, "chat", "agent-sessions", "enterprise")
        fb.engine.dispose()
        with served(url) as base, httpx.Client(base_url=base, timeout=300) as client:
            headers = {"Authorization": "Bearer bench-operator-key", "Content-Type": "application/json"}
            bodies = [
                [(name, json.dumps({"events": evs}).encode()) for name, evs in (("events", a), ("chat", m))]
                for a, m in rounds
            ]

            def post(name: str, body: bytes, key: str) -> dict:
                r = client.post(f"/v1/tenants/{name}/usage/events", content=body,
                                headers={**headers, "Idempotency-Key": key})
                assert r.status_code == 200, r.text[:500]
                return r.json()

            cpu, t0 = server_cpu_seconds(base), time.perf_counter()
            for n, pair in enumerate(bodies):
                for name, body in pair:
                    post(name, body, f"new-{n}-{name}")
            new, cpu = time.perf_counter() - t0, server_cpu_seconds(base) - cpu
            t0 = time.perf_counter()
            dups = sum(post(name, body, f"again-{name}")["duplicates"] for name, body in bodies[0])
            dup = time.perf_counter() - t0
            assert dups == sum(len(evs) for evs in rounds[0]), dups
    finally:
        drop()
    return new, dup, cpu


def once(engine: str, rounds: list[tuple[list[dict], list[dict]]], bare_first: bool) -> tuple[float, float, float, int]:
    """One repetition on a fresh database: seconds for the rounds' new events, for the first round sent again (all
    duplicates) and for the bare baseline of the same rows (run before farebox when `bare_first`, so that neither
    always has the warmer machine), and the units farebox counted."""
    url, drop = database(engine)
    try:
        fb = farebox(url)
        tenant(fb, "events", "attendee-credits", "enterprise")  # overage: every new person counts
        tenant(fb, "chat", "agent-sessions", "enterprise")
        batches = [evs for pair in rounds for evs in pair]

        def baseline() -> float:
            if engine == "sqlite":
                return bare_sqlite(url.removeprefix("sqlite:///") + ".bare", batches)
            return bare_copy(fb.engine.url.render_as_string(hide_password=False), batches)

        bare = baseline() if bare_first else 0.0
        counted = 0
        t0 = time.perf_counter()
        for attendees, messages in rounds:
            counted += ingestion.ingest(fb, SYSTEM, "events", attendees).counted
            counted += ingestion.ingest(fb, SYSTEM, "chat", messages).counted
        ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        dups = ingestion.ingest(fb, SYSTEM, "events", rounds[0][0]).duplicates
        dups += ingestion.ingest(fb, SYSTEM, "chat", rounds[0][1]).duplicates
        dup = time.perf_counter() - t0
        assert dups == len(rounds[0][0]) + len(rounds[0][1]), dups
        assert usage.verify(fb, SYSTEM) == []
        if not bare_first:
            bare = baseline()
        fb.engine.dispose()
    finally:
        drop()
    return ours, dup, bare, counted


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="sqlite", choices=["sqlite", "postgres"])
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--size", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3, help="repetitions, each on a fresh database; medians reported")
    ap.add_argument("--http", action="store_true", help="also over HTTP to farebox serve")
    args = ap.parse_args()
    rng = random.Random(13)
    seen: dict[int, list[str]] = {}
    rounds = [
        (attendee_events(b, args.size, rng, seen), message_events(b, args.size, rng)) for b in range(args.batches)
    ]
    runs = [once(args.engine, rounds, bare_first=i % 2 == 1) for i in range(args.repeat)]
    ours, dup = median([r[0] for r in runs]), median([r[1] for r in runs])
    bare, counted = median([r[2] for r in runs]), runs[0][3]
    ratios = [100 * r[2] / r[0] for r in runs]
    label = "bare executemany" if args.engine == "sqlite" else "bare COPY"
    total = 2 * args.batches * args.size
    http = over_http(args.engine, rounds) if args.http else None
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    report(
        f"ingestion, {args.engine}: {args.batches} rounds of 2 batches of {args.size} "
        f"(joins + registrations; messages), {counted} counted; medians of {args.repeat} runs, each on a fresh "
        f"database; load average {load}",
        [
            ("farebox new events/s", total / ours, "/s"),
            ("farebox duplicate events/s", 2 * args.size / dup, "/s"),
            (f"{label} rows/s (baseline)", total / bare, "/s"),
            ("ratio farebox / baseline (median of the runs)", median(ratios), "%"),
        ],
    )
    each = (f"{total / new:,.0f} against {total / base:,.0f}/s = {100 * base / new:.1f} %" for new, _, base, _ in runs)
    print("  each run, new events against the baseline: " + "; ".join(each))
    if http is not None:
        new, dup, cpu = http
        report(
            f"the same over HTTP: farebox serve (1 worker), one POST a batch with an Idempotency-Key, {args.engine}",
            [
                ("HTTP new events/s", total / new, "/s"),
                ("HTTP duplicate events/s", 2 * args.size / dup, "/s"),
                ("server CPU per new event", 1e6 * cpu / total, "µs"),
                ("HTTP new / in-process new", 100 * ours / new, "%"),
            ],
        )


if __name__ == "__main__":
    main()
