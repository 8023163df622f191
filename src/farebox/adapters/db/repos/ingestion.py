"""Queries of batch ingestion: a chunk's state read, and its effects written, in sets.

None commits; `services.ingestion` owns each chunk's transaction.  On PostgreSQL
the chunk's occurrences and conversations are locked in id order (`FOR UPDATE`),
as a live join or message locks its own; a period pool is taken once per
chunk, last, with the guarded `UPDATE ... WHERE used + n <= cap`
(`metering.consume`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, tuple_, update

from farebox.adapters.db.repos.metering import _insert
from farebox.adapters.db.tables.invoicing import invoices
from farebox.adapters.db.tables.metering import conversations, occurrence_people, occurrences, usage_counters, usage_events

Key = tuple[str, str]  # (source, id)
_e, _o, _p, _v, _c = usage_events.c, occurrences.c, occurrence_people.c, conversations.c, usage_counters.c
_OCC_WRITE = update(occurrences).where(_o.tenant_id == bindparam("_t"), _o.id == bindparam("_id"))
_ROWS_PER_STATEMENT = 1000  # multi-row statements stay far below SQLite's 32,766 parameters


# The per-row statements of a chunk run on the driver (`exec_driver_sql`: SQLAlchemy still translates errors,
# so a lost connection is a 503), with values converted here as the column types would: per row, SQLAlchemy's
# statement and type handling cost several times the database's own work (docs/performance.md).
def _many(conn: Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    if rows:
        conn.exec_driver_sql(sql if conn.dialect.name == "sqlite" else sql.replace("?", "%s"), list(rows))


@lru_cache(maxsize=4096)
def _sqlite_at(value: datetime) -> str:
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")


def _at(conn: Connection) -> Any:
    """How a UTC instant is bound: SQLite keeps SQLAlchemy's text form (no zone), PostgreSQL the aware value."""
    if conn.dialect.name == "sqlite":
        return lambda v: None if v is None else _sqlite_at(v)
    return lambda v: v


def _json(conn: Connection) -> str:
    return "?" if conn.dialect.name == "sqlite" else "?::jsonb"


def _slices(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), _ROWS_PER_STATEMENT):
        yield items[start:start + _ROWS_PER_STATEMENT]


# --- received events (G4) --------------------------------------------------------------------


def claim_events(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[Key]:
    """Record first arrivals; the (source, id) keys that were new (a key seen before, or twice here, once).

    One statement, run for many rows (SQLAlchemy's "insertmanyvalues": multi-row
    `INSERT ... ON CONFLICT DO NOTHING RETURNING` in pages, compiled once)."""
    if not rows:
        return set()
    stmt = _insert(conn)(usage_events).on_conflict_do_nothing(index_elements=["tenant_id", "source", "id"]).returning(_e.source, _e.id)
    return {(s, i) for s, i in conn.execute(stmt, list(rows))}


def events_by_key(conn: Connection, tenant_id: str, keys: Iterable[Key]) -> dict[Key, dict[str, Any]]:
    """The stored payload hash and first answer of these events (one statement per 1,000 keys)."""
    found: dict[Key, dict[str, Any]] = {}
    for part in _slices(sorted(set(keys))):
        query = select(_e.source, _e.id, _e.payload_hash, _e.result).where(_e.tenant_id == tenant_id, tuple_(_e.source, _e.id).in_(list(part)))
        for row in conn.execute(query).mappings():
            found[(row["source"], row["id"])] = {"payload_hash": row["payload_hash"], "result": row["result"]}
    return found


def claims_are_exclusive(conn: Connection) -> bool:
    """SQLite: the transaction holds the database's one write lock, so an event not found is ours to insert."""
    return conn.dialect.name == "sqlite"


def insert_events(conn: Connection, tenant_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """New events with their answers (under `claims_are_exclusive` only)."""
    at = _at(conn)
    _many(
        conn, f"INSERT INTO usage_events (tenant_id, source, id, payload_hash, type, time, result, received_at) VALUES (?, ?, ?, ?, ?, ?, {_json(conn)}, ?)",
        [(tenant_id, r["source"], r["id"], r["payload_hash"], r["type"], at(r["time"]), json.dumps(r["result"]), at(r["received_at"])) for r in rows],
    )


def set_results(conn: Connection, tenant_id: str, results: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
    _many(conn, f"UPDATE usage_events SET result = {_json(conn)} WHERE tenant_id = ? AND source = ? AND id = ?",
          [(json.dumps(r), tenant_id, s, i) for s, i, r in results])


# --- occurrences and the people in them --------------------------------------------------------


def lock_occurrences(conn: Connection, tenant_id: str, created: Mapping[str, datetime], others: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Create the occurrences of `created` that are new (at the given instant), then read (and lock, in id order)
    those and `others` (which are not created)."""
    if created:
        rows = [{"tenant_id": tenant_id, "id": o, "counted": 0, "present": 0, "peak": 0, "queue_tail": 0, "created_at": at} for o, at in sorted(created.items())]
        conn.execute(_insert(conn)(occurrences).on_conflict_do_nothing(index_elements=["tenant_id", "id"]), rows)
    ids = sorted(set(created) | set(others))
    found: dict[str, dict[str, Any]] = {}
    for part in _slices(ids):
        query = select(occurrences).where(_o.tenant_id == tenant_id, _o.id.in_(list(part))).order_by(_o.id).with_for_update()
        found.update({row["id"]: dict(row) for row in conn.execute(query).mappings()})
    return found


def people_of(conn: Connection, tenant_id: str, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for part in _slices(sorted(set(pairs))):
        query = select(occurrence_people).where(_p.tenant_id == tenant_id, tuple_(_p.occurrence_id, _p.person_id).in_(list(part)))
        found.update({(row["occurrence_id"], row["person_id"]): dict(row) for row in conn.execute(query).mappings()})
    return found


def write_occurrences(conn: Connection, tenant_id: str, rows: Sequence[dict[str, Any]]) -> None:
    keys = ("subscription_id", "started_at", "deadline_at", "counted", "present", "peak")
    if rows:
        conn.execute(_OCC_WRITE, [{"_t": tenant_id, "_id": r["id"], **{k: r[k] for k in keys}} for r in rows])


def write_people(conn: Connection, tenant_id: str, new: Sequence[dict[str, Any]], changed: Sequence[dict[str, Any]]) -> None:
    at = _at(conn)
    _many(
        conn, "INSERT INTO occurrence_people (tenant_id, occurrence_id, person_id, registered_at, counted_at, first_mode, present, waiting_ticket, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(tenant_id, r["occurrence_id"], r["person_id"], at(r["registered_at"]), at(r["counted_at"]), r["first_mode"], r["present"], r["waiting_ticket"],
          at(r["updated_at"])) for r in new],
    )
    _many(
        conn, "UPDATE occurrence_people SET registered_at = ?, counted_at = ?, first_mode = ?, present = ?, waiting_ticket = ?, updated_at = ? "
        "WHERE tenant_id = ? AND occurrence_id = ? AND person_id = ?",
        [(at(r["registered_at"]), at(r["counted_at"]), r["first_mode"], r["present"], r["waiting_ticket"], at(r["updated_at"]), tenant_id,
          r["occurrence_id"], r["person_id"]) for r in changed],
    )


# --- conversations (A1, A2) ----------------------------------------------------------------------


def lock_conversations(conn: Connection, tenant_id: str, first_at: Mapping[str, datetime]) -> dict[str, dict[str, Any]]:
    """Create the new conversations (no window yet, as `message_in` does), then read and lock them in id order."""
    rows = [
        {"tenant_id": tenant_id, "id": c, "window_started_at": at, "window_ends_at": at, "window_billed": False, "windows": 0, "billable": 0,
         "first_message_at": at, "last_message_at": at}
        for c, at in sorted(first_at.items())
    ]
    if not rows:
        return {}
    at = _at(conn)
    _many(
        conn, "INSERT INTO conversations (tenant_id, id, window_started_at, window_ends_at, window_billed, windows, billable, first_message_at, "
        "last_message_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, id) DO NOTHING",
        [(tenant_id, r["id"], at(r["window_started_at"]), at(r["window_ends_at"]), False, 0, 0, at(r["first_message_at"]), at(r["last_message_at"]))
         for r in rows],
    )
    found: dict[str, dict[str, Any]] = {}
    for part in _slices(sorted(first_at)):
        query = select(conversations).where(_v.tenant_id == tenant_id, _v.id.in_(list(part))).order_by(_v.id).with_for_update()
        found.update({row["id"]: dict(row) for row in conn.execute(query).mappings()})
    return found


def write_conversations(conn: Connection, tenant_id: str, rows: Sequence[dict[str, Any]]) -> None:
    at = _at(conn)
    _many(
        conn, "UPDATE conversations SET window_started_at = ?, window_ends_at = ?, window_billed = ?, windows = ?, billable = ?, last_message_at = ? "
        "WHERE tenant_id = ? AND id = ?",
        [(at(r["window_started_at"]), at(r["window_ends_at"]), r["window_billed"], r["windows"], r["billable"], at(r["last_message_at"]), tenant_id, r["id"])
         for r in rows],
    )


# --- period pools and the ledger (G3) --------------------------------------------------------------


def pool_counter(conn: Connection, *, tenant_id: str, subscription_id: str, meter: str, period_start_at: datetime, lock: bool) -> tuple[int, int] | None:
    """A counter's (used, carried_in) now, or None before its first unit (`lock`: kept until commit, PostgreSQL)."""
    query = select(_c.used, _c.carried_in).where(
        _c.tenant_id == tenant_id, _c.subscription_id == subscription_id, _c.meter == meter, _c.period_start_at == period_start_at
    )
    row = conn.execute(query.with_for_update() if lock else query).first()
    return None if row is None else (int(row[0]), int(row[1]))


def record_units(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    at = _at(conn)
    _many(
        conn, "INSERT INTO usage_records (tenant_id, id, subscription_id, meter, period_start_at, subject, person_id, units, at, cause) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(r["tenant_id"], r["id"], r["subscription_id"], r["meter"], at(r["period_start_at"]), r["subject"], r["person_id"], r["units"], at(r["at"]), r["cause"])
         for r in rows],
    )


# --- late usage (D3) -----------------------------------------------------------------------------


def invoiced_until(conn: Connection, tenant_id: str) -> dict[str, datetime]:
    """Per subscription of the tenant, when its last invoice was issued (late usage stops there, D3)."""
    i = invoices.c
    rows = conn.execute(select(i.subscription_id, func.max(i.issued_at)).where(i.tenant_id == tenant_id).group_by(i.subscription_id))
    return {sub: issued for sub, issued in rows if issued is not None}
