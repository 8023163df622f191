"""Batch ingestion throughput, beside a bare executemany (SQLite) or COPY (PostgreSQL)
of the same rows in the same run.

    .venv/bin/python bench/ingestion.py [--engine sqlite|postgres] [--batches 3] [--size 10000]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _setup import database, farebox, report, tenant  # noqa: E402

from farebox.domain.access import SYSTEM  # noqa: E402
from farebox.services import ingestion  # noqa: E402


def events(batch: int, size: int) -> list[dict]:
    return [
        {"id": f"b{batch}-{i}", "source": "chat", "type": "conversation.message", "time": None,
         "data": {"conversation_id": f"c{batch}-{i}", "from": "customer"}}
        for i in range(size)
    ]


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="sqlite", choices=["sqlite", "postgres"])
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--size", type=int, default=10_000)
    args = ap.parse_args()
    url, drop = database(args.engine)
    try:
        fb = farebox(url)
        tenant(fb, "bench", "agent-sessions", "enterprise")  # overage: every event counts
        batches = [events(b, args.size) for b in range(args.batches)]
        t0 = time.perf_counter()
        for evs in batches:
            result = ingestion.ingest(fb, SYSTEM, "bench", evs)
            assert result.counted == len(evs), result.refused
        ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = ingestion.ingest(fb, SYSTEM, "bench", batches[0])
        dup = time.perf_counter() - t0
        assert again.duplicates == len(batches[0])
        if args.engine == "sqlite":
            bare = bare_sqlite(url.removeprefix("sqlite:///") + ".bare", batches)
            label = "bare executemany"
        else:
            bare = bare_copy(fb.engine.url.render_as_string(hide_password=False), batches)
            label = "bare COPY"
        fb.engine.dispose()
    finally:
        drop()
    total = args.batches * args.size
    report(
        f"ingestion, {args.engine}: {args.batches} batches of {args.size} conversation messages (each a new billable "
        f"session)",
        [
            ("farebox events/s", total / ours, "/s"),
            ("farebox duplicate batch events/s", args.size / dup, "/s"),
            (f"{label} rows/s (baseline)", total / bare, "/s"),
            ("ratio farebox / baseline", 100 * (total / ours) / (total / bare), "%"),
        ],
    )


if __name__ == "__main__":
    main()
