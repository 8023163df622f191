"""Admission decisions in-process: rate and p50/p99, beside the same atomic
statements issued bare (sqlite3 / psycopg) in the same run, in alternating
blocks of 100 so that both see the same load on a shared machine.

    .venv/bin/python bench/admission.py [--engine sqlite|postgres] [-n 5000]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _setup import START, database, farebox, pct, report, tenant  # noqa: E402

from farebox.domain.access import SYSTEM  # noqa: E402
from farebox.services import admission  # noqa: E402

BARE_SCHEMA = [
    "CREATE TABLE occ (tenant_id TEXT, id TEXT, counted INT, present INT, PRIMARY KEY (tenant_id, id))",
    "CREATE TABLE people (tenant_id TEXT, occurrence_id TEXT, person_id TEXT, counted_at TEXT, PRIMARY KEY (tenant_id, occurrence_id, person_id))",
    "CREATE TABLE counters (tenant_id TEXT, sub TEXT, meter TEXT, start TEXT, used INT, PRIMARY KEY (tenant_id, sub, meter, start))",
    "CREATE TABLE ledger (tenant_id TEXT, id TEXT, subject TEXT, person_id TEXT, at TEXT, PRIMARY KEY (tenant_id, id))",
]


class BareSqlite:
    """The decision's atomic statements, bare: lock, read person, conditional pool update, write person, ledger, occurrence."""

    def __init__(self, path: str) -> None:
        self.db = db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        for s in BARE_SCHEMA:
            db.execute(s)
        db.execute("INSERT INTO counters VALUES ('t', 's', 'credits', '2026', 0)")
        for o in range(10):
            db.execute("INSERT INTO occ VALUES ('t', ?, 0, 0)", (f"o{o}",))

    def decide(self, i: int) -> None:
        db, occ = self.db, f"o{i % 10}"
        db.execute("BEGIN IMMEDIATE")
        db.execute("SELECT * FROM occ WHERE tenant_id='t' AND id=?", (occ,)).fetchone()
        db.execute("SELECT * FROM people WHERE tenant_id='t' AND occurrence_id=? AND person_id=?", (occ, f"p{i}")).fetchone()
        db.execute("UPDATE counters SET used = used + 1 WHERE tenant_id='t' AND sub='s' AND meter='credits' AND start='2026' AND used + 1 <= 100000000 RETURNING used").fetchone()
        db.execute("INSERT INTO ledger VALUES ('t', ?, ?, ?, '2026-01-05')", (f"u{i}", occ, f"p{i}"))
        db.execute("INSERT INTO people VALUES ('t', ?, ?, '2026-01-05')", (occ, f"p{i}"))
        db.execute("UPDATE occ SET counted = counted + 1, present = present + 1 WHERE tenant_id='t' AND id=?", (occ,))
        db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()


class BarePostgres:
    """The same statements with psycopg, the occurrence locked with FOR UPDATE, the pool with UPDATE ... RETURNING."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.db = db = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=False)
        for s in BARE_SCHEMA:
            db.execute(s.replace("CREATE TABLE ", "CREATE TABLE bare_"))
        db.execute("INSERT INTO bare_counters VALUES ('t', 's', 'credits', '2026', 0)")
        for o in range(10):
            db.execute("INSERT INTO bare_occ VALUES ('t', %s, 0, 0)", (f"o{o}",))
        db.commit()

    def decide(self, i: int) -> None:
        db, occ = self.db, f"o{i % 10}"
        db.execute("SELECT * FROM bare_occ WHERE tenant_id='t' AND id=%s FOR UPDATE", (occ,)).fetchone()
        db.execute("SELECT * FROM bare_people WHERE tenant_id='t' AND occurrence_id=%s AND person_id=%s", (occ, f"p{i}")).fetchone()
        db.execute("UPDATE bare_counters SET used = used + 1 WHERE tenant_id='t' AND sub='s' AND meter='credits' AND start='2026' AND used + 1 <= 100000000 RETURNING used").fetchone()
        db.execute("INSERT INTO bare_ledger VALUES ('t', %s, %s, %s, '2026-01-05')", (f"u{i}", occ, f"p{i}"))
        db.execute("INSERT INTO bare_people VALUES ('t', %s, %s, '2026-01-05')", (occ, f"p{i}"))
        db.execute("UPDATE bare_occ SET counted = counted + 1, present = present + 1 WHERE tenant_id='t' AND id=%s", (occ,))
        db.commit()

    def close(self) -> None:
        self.db.close()


def interleaved(ours, bare, n: int, block: int = 100) -> tuple[list[float], list[float]]:
    """Blocks of farebox decisions and bare ones in turn, so both see the same machine load."""
    lat: tuple[list[float], list[float]] = ([], [])
    for first in range(0, n, block):
        for decide, samples in ((ours, lat[0]), (bare, lat[1])):
            for i in range(first, min(n, first + block)):
                t0 = time.perf_counter()
                decide(i)
                samples.append(time.perf_counter() - t0)
    return lat


def farebox_join(fb):
    def decide(i: int) -> None:
        d = admission.join(fb, SYSTEM, "bench", f"o{i % 10}", f"p{i}", mode="live")
        assert d.counted, d

    return decide


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="sqlite", choices=["sqlite", "postgres"])
    ap.add_argument("-n", type=int, default=5000)
    args = ap.parse_args()
    url, drop = database(args.engine)
    try:
        fb = farebox(url)
        tenant(fb, "bench", "attendee-credits", "enterprise")  # overage: never refuses, every join counts
        for i in range(200):  # warm-up
            admission.join(fb, SYSTEM, "bench", "warm", f"w{i}")
        if args.engine == "sqlite":
            bare = BareSqlite(url.removeprefix("sqlite:///") + ".bare")
        else:
            bare = BarePostgres(fb.engine.url.render_as_string(hide_password=False))
        ours, bare_lat = interleaved(farebox_join(fb), bare.decide, args.n)
        bare.close()
        fb.engine.dispose()
    finally:
        drop()
    rate, bare_rate = len(ours) / sum(ours), len(bare_lat) / sum(bare_lat)
    report(
        f"admission decisions in-process, {args.engine}, n={args.n} (counted joins: lock, person, pool, ledger)",
        [
            ("farebox decisions/s", rate, "/s"),
            ("farebox p50", pct(ours, 0.50) * 1000, "ms"),
            ("farebox p99", pct(ours, 0.99) * 1000, "ms"),
            ("bare statements decisions/s (baseline)", bare_rate, "/s"),
            ("bare p50", pct(bare_lat, 0.50) * 1000, "ms"),
            ("bare p99", pct(bare_lat, 0.99) * 1000, "ms"),
            ("ratio farebox / baseline", 100 * rate / bare_rate, "%"),
        ],
    )


if __name__ == "__main__":
    main()
