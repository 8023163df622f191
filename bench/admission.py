"""Admission decisions in-process: rate and p50/p99, beside the same atomic
statements issued bare (sqlite3 / psycopg) in the same run, in alternating
blocks of 100 so that both see the same load on a shared machine.

A second baseline splits farebox's time in two: the very statements farebox
issued for each decision (recorded on a twin database, with their parameters),
replayed on the bare driver, one transaction a decision, on a copy of that
twin.  What farebox takes beyond that replay is its own Python; what the replay
takes beyond the first baseline is farebox's schema and statements (wider rows,
more indexes, a join's reads and writes folded into fewer, larger statements)
against the baseline's six small ones.

On PostgreSQL a third baseline sends the bare decision's statements in two
round trips (`BEGIN` and the reads in one message, the writes and `COMMIT` in
another, bound client-side), as the issue's "at most two round trips" asks:
what folding the round trips alone would save.

    .venv/bin/python bench/admission.py [--engine sqlite|postgres] [-n 5000]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _setup import copy_database, database, farebox, pct, report, tenant  # noqa: E402
from sqlalchemy import event  # noqa: E402

from farebox.kernel.access import SYSTEM  # noqa: E402
from farebox.metering.services import admission  # noqa: E402

BARE_SCHEMA = [
    "CREATE TABLE occ (tenant_id TEXT, id TEXT, counted INT, present INT, PRIMARY KEY (tenant_id, id))",
    "CREATE TABLE people (tenant_id TEXT, occurrence_id TEXT, person_id TEXT, counted_at TEXT, PRIMARY KEY (tenant_id, "
    "occurrence_id, person_id))",
    "CREATE TABLE counters (tenant_id TEXT, sub TEXT, meter TEXT, start TEXT, used INT, PRIMARY KEY (tenant_id, sub, "
    "meter, start))",
    "CREATE TABLE ledger (tenant_id TEXT, id TEXT, subject TEXT, person_id TEXT, at TEXT, PRIMARY KEY (tenant_id, id))",
]


# One decision, bare: lock the occurrence, read the person, the conditional pool
# update, the ledger row, the person, the occurrence's counts.  `?` placeholders;
# PostgreSQL gets `%s`, `bare_` tables and FOR UPDATE on the lock.
BARE_DECISION = [
    ("SELECT * FROM occ WHERE tenant_id='t' AND id=? {lock}", lambda occ, i: (occ,)),
    ("SELECT * FROM people WHERE tenant_id='t' AND occurrence_id=? AND person_id=?", lambda occ, i: (occ, f"p{i}")),
    (
        "UPDATE counters SET used = used + 1 WHERE tenant_id='t' AND sub='s' AND meter='credits' AND start='2026' AND "
        "used + 1 <= 100000000 RETURNING used",
        lambda occ, i: (),
    ),
    ("INSERT INTO ledger VALUES ('t', ?, ?, ?, '2026-01-05')", lambda occ, i: (f"u{i}", occ, f"p{i}")),
    ("INSERT INTO people VALUES ('t', ?, ?, '2026-01-05')", lambda occ, i: (occ, f"p{i}")),
    ("UPDATE occ SET counted = counted + 1, present = present + 1 WHERE tenant_id='t' AND id=?", lambda occ, i: (occ,)),
]


class Bare:
    """The decision's statements on the bare driver (sqlite3 or psycopg), nothing in between."""

    def __init__(self, url_or_path: str, engine: str) -> None:
        pg = engine == "postgres"
        if pg:
            import psycopg

            self.db = psycopg.connect(url_or_path.replace("postgresql+psycopg://", "postgresql://"), autocommit=False)
        else:
            self.db = sqlite3.connect(url_or_path, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")

        def sql(text: str) -> str:
            text = text.format(lock="FOR UPDATE" if pg else "")
            if pg:
                for table in ("occ", "people", "counters", "ledger"):
                    text = text.replace(f"TABLE {table} ", f"TABLE bare_{table} ").replace(
                        f"FROM {table} ", f"FROM bare_{table} "
                    )
                    text = text.replace(f"INTO {table} ", f"INTO bare_{table} ").replace(
                        f"UPDATE {table} ", f"UPDATE bare_{table} "
                    )
                text = text.replace("?", "%s")
            return text

        self.pg, self.statements = pg, [(sql(text), params) for text, params in BARE_DECISION]
        for s in BARE_SCHEMA:
            self.db.execute(sql(s))
        self.db.execute(sql("INSERT INTO counters VALUES ('t', 's', 'credits', '2026', 0)"))
        for o in range(10):
            self.db.execute(sql("INSERT INTO occ VALUES ('t', ?, 0, 0)"), (f"o{o}",))
        if pg:
            self.db.commit()
            # the same statements in two round trips: BEGIN and the reads in one message, the writes and COMMIT in
            # another (several statements in one message: the simple query protocol, parameters bound client-side)
            url = url_or_path.replace("postgresql+psycopg://", "postgresql://")
            self.folded = psycopg.connect(url, autocommit=True)
            texts = [text for text, _ in self.statements]
            self.folded_texts = ("BEGIN; " + "; ".join(texts[:2]), "; ".join(texts[2:]) + "; COMMIT")
            self.folded_params = [params for _, params in BARE_DECISION]

    def decide_in_two(self, i: int) -> None:
        """PostgreSQL: the decision's statements in two round trips (people and ledger rows of their own)."""
        import psycopg

        occ = f"o{i % 10}"
        args = [params(occ, f"f{i}") for params in self.folded_params]
        cursor = psycopg.ClientCursor(self.folded)
        cursor.execute(self.folded_texts[0], [a for part in args[:2] for a in part])
        while cursor.nextset():  # BEGIN's result first, then each read's
            cursor.fetchall()
        cursor.execute(self.folded_texts[1], [a for part in args[2:] for a in part])
        assert self.folded.info.transaction_status == psycopg.pq.TransactionStatus.IDLE

    def decide(self, i: int) -> None:
        db, occ = self.db, f"o{i % 10}"
        if not self.pg:
            db.execute("BEGIN IMMEDIATE")
        for text, params in self.statements:
            db.execute(text, params(occ, i)).fetchone() if text.startswith(
                ("SELECT", "UPDATE counters", "UPDATE bare_counters")
            ) else db.execute(text, params(occ, i))
        db.commit() if self.pg else db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()
        if self.pg:
            self.folded.close()


def interleaved(deciders, n: int, block: int = 100) -> list[list[float]]:
    """Blocks of each decider's decisions in turn, so all see the same machine load."""
    lat: list[list[float]] = [[] for _ in deciders]
    for first in range(0, n, block):
        for decide, samples in zip(deciders, lat, strict=True):
            for i in range(first, min(n, first + block)):
                t0 = time.perf_counter()
                decide(i)
                samples.append(time.perf_counter() - t0)
    return lat


class Replay:
    """Farebox's own statements for each decision, recorded on a twin database and replayed bare on a copy of it
    (SQLite: a backup of the twin; PostgreSQL: a database made from it as a template), each decision between
    `BEGIN` and `COMMIT` as farebox runs it (psycopg prepares a statement after five uses, for both alike)."""

    def __init__(self, engine: str, n: int) -> None:
        url, self._drop = database(engine)
        twin = farebox(url)
        _tenant_and_warm_up(twin)
        twin.engine.dispose()
        self.pg = engine == "postgres"
        if self.pg:
            import psycopg

            copy, drop_copy = copy_database(url)
            self._drop_copy = drop_copy
            self.db: Any = psycopg.connect(copy.replace("postgresql+psycopg://", "postgresql://"), autocommit=False)
        else:
            path = url.removeprefix("sqlite:///")
            self.db = sqlite3.connect(path + ".replay", isolation_level=None)
            with sqlite3.connect(path) as source:
                source.backup(self.db)  # the twin as it is before the decisions
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
                self.db.execute(f"PRAGMA {pragma}")
        self.decisions: list[list[tuple[str, object]]] = []
        recording: list[tuple[str, object]] = []
        record = lambda _c, _cur, statement, params, _ctx, _many: recording.append((statement, params))  # noqa: E731
        event.listen(twin.engine, "before_cursor_execute", record)
        decide = farebox_join(twin)
        for i in range(n):
            recording = []
            decide(i)
            self.decisions.append(recording)
        event.remove(twin.engine, "before_cursor_execute", record)
        twin.engine.dispose()

    def decide(self, i: int) -> None:
        db = self.db
        if self.pg:
            cursor = db.cursor()
            for statement, params in self.decisions[i]:
                cursor.execute(statement, params)
                if cursor.description is not None:
                    cursor.fetchone()
            db.commit()
            return
        db.execute("BEGIN IMMEDIATE")
        for statement, params in self.decisions[i]:
            db.execute(statement, params).fetchone()
        db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()
        if self.pg:
            self._drop_copy()
        self._drop()


def _tenant_and_warm_up(fb) -> None:
    tenant(fb, "bench", "attendee-credits", "enterprise")  # overage: never refuses, every join counts
    for i in range(200):
        admission.join(fb, SYSTEM, "bench", "warm", f"w{i}")


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
    replay: Replay | None = None
    try:
        fb = farebox(url)
        _tenant_and_warm_up(fb)
        replay = Replay(args.engine, args.n)
        where = (
            url.removeprefix("sqlite:///") + ".bare"
            if args.engine == "sqlite"
            else fb.engine.url.render_as_string(hide_password=False)
        )
        bare = Bare(where, args.engine)
        deciders = [farebox_join(fb), bare.decide, replay.decide] + ([bare.decide_in_two] if bare.pg else [])
        ours, bare_lat, replayed, *in_two = interleaved(deciders, args.n)
        bare.close()
        fb.engine.dispose()
    finally:
        if replay is not None:
            replay.close()
        drop()
    rate, bare_rate = len(ours) / sum(ours), len(bare_lat) / sum(bare_lat)
    report(
        f"admission decisions in-process, {args.engine}, n={args.n} (counted joins: lock, person, pool, ledger)",
        [
            ("farebox decisions/s", rate, "/s"),
            ("farebox p50", pct(ours, 0.50) * 1e6, "µs"),
            ("farebox p99", pct(ours, 0.99) * 1e6, "µs"),
            ("bare statements decisions/s (baseline)", bare_rate, "/s"),
            ("bare p50", pct(bare_lat, 0.50) * 1e6, "µs"),
            ("bare p99", pct(bare_lat, 0.99) * 1e6, "µs"),
            ("ratio farebox / baseline", 100 * rate / bare_rate, "%"),
            ("ratio by medians (bare p50 / farebox p50)", 100 * pct(bare_lat, 0.50) / pct(ours, 0.50), "%"),
            ("farebox's own statements replayed bare p50", pct(replayed, 0.50) * 1e6, "µs"),
            ("  their p99", pct(replayed, 0.99) * 1e6, "µs"),
            ("ratio by medians (replay / farebox)", 100 * pct(replayed, 0.50) / pct(ours, 0.50), "%"),
            *(
                [
                    ("bare statements in two round trips p50", pct(in_two[0], 0.50) * 1e6, "µs"),
                    ("ratio by medians (bare / bare in two)", 100 * pct(bare_lat, 0.50) / pct(in_two[0], 0.50), "%"),
                ]
                if in_two
                else []
            ),
        ],
    )


if __name__ == "__main__":
    main()
