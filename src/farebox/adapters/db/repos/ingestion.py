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
from farebox.adapters.db.tables.metering import (
    conversations,
    occurrence_people,
    occurrences,
    usage_counters,
    usage_events,
)

Key = tuple[str, str]  # (source, id)
_e, _o, _p, _v, _c = usage_events.c, occurrences.c, occurrence_people.c, conversations.c, usage_counters.c
_OCC_WRITE = update(occurrences).where(_o.tenant_id == bindparam("_t"), _o.id == bindparam("_id"))
_ROWS_PER_STATEMENT = 1000  # multi-row statements stay far below SQLite's 32,766 parameters


# The per-row statements of a chunk run on the driver (`exec_driver_sql`: SQLAlchemy still translates errors,
# so a lost connection is a 503), with values converted here as the column types would: per row, SQLAlchemy's
# statement and type handling cost several times the database's own work (docs/performance.md).  SQLite runs
# one prepared statement for every row (`executemany`); PostgreSQL gets one statement for the whole set, each
# column sent as one array (`unnest`), so a set costs one round trip.
Column = tuple[str, str]  # (name, PostgreSQL type)


def _insert_rows(
    conn: Connection, table: str, columns: Sequence[Column], rows: Sequence[tuple[Any, ...]], *, on_conflict: str = ""
) -> list[Any]:
    """Insert the rows; what `RETURNING` in `on_conflict` returns (PostgreSQL only)."""
    if not rows:
        return []
    names = ", ".join(n for n, _ in columns)
    if conn.dialect.name == "sqlite":
        assert "RETURNING" not in on_conflict, "SQLite returns nothing from executemany"
        conn.exec_driver_sql(
            f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' for _ in columns)}) {on_conflict}", list(rows)
        )
        return []
    arrays = ", ".join(f"%s::{_array(t)}" for _, t in columns)
    values = ", ".join(f"{n}::{t}" if t == "jsonb" else n for n, t in columns)
    sql = f"INSERT INTO {table} ({names}) SELECT {values} FROM unnest({arrays}) AS v({names}) {on_conflict}"
    result = conn.exec_driver_sql(sql, tuple(list(c) for c in zip(*rows, strict=True)))
    return list(result.all()) if result.returns_rows else []


def _update_rows(
    conn: Connection,
    table: str,
    tenant_id: str,
    sets: Sequence[Column],
    keys: Sequence[Column],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """Each row: the values of `sets`, then of `keys` (with the tenant: the primary key)."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        assignments = ", ".join(f"{n} = ?" for n, _ in sets)
        where = " AND ".join(f"{n} = ?" for n, _ in keys)
        conn.exec_driver_sql(
            f"UPDATE {table} SET {assignments} WHERE tenant_id = ? AND {where}",
            [(*r[: len(sets)], tenant_id, *r[len(sets) :]) for r in rows],
        )
        return
    columns = [*sets, *keys]
    assignments = ", ".join(f"{n} = v.{n}::{t}" if t == "jsonb" else f"{n} = v.{n}" for n, t in sets)
    where = " AND ".join(f"x.{n} = v.{n}" for n, _ in keys)
    arrays = ", ".join(f"%s::{_array(t)}" for _, t in columns)
    names = ", ".join(n for n, _ in columns)
    conn.exec_driver_sql(
        f"UPDATE {table} AS x SET {assignments} FROM unnest({arrays}) AS v({names}) WHERE x.tenant_id = %s AND {where}",
        (*[list(c) for c in zip(*rows, strict=True)], tenant_id),
    )


def _array(pg_type: str) -> str:
    return "text[]" if pg_type == "jsonb" else f"{pg_type}[]"


@lru_cache(maxsize=4096)
def _sqlite_at(value: datetime) -> str:
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")


def _at(conn: Connection) -> Any:
    """How a UTC instant is bound: SQLite keeps SQLAlchemy's text form (no zone), PostgreSQL the aware value."""
    if conn.dialect.name == "sqlite":
        return lambda v: None if v is None else _sqlite_at(v)
    return lambda v: v


def _slices(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), _ROWS_PER_STATEMENT):
        yield items[start : start + _ROWS_PER_STATEMENT]


# --- received events (G4) --------------------------------------------------------------------


def _event_rows(conn: Connection, tenant_id: str, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """Events as `_EVENT` columns (all of one tenant)."""
    at = _at(conn)
    return [
        (tenant_id, r["source"], r["id"], r["payload_hash"], r["type"], at(r["time"]), json.dumps(r["result"]),
         at(r["received_at"]))
        for r in rows
    ]


def claim_events(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[Key]:
    """Record first arrivals (PostgreSQL); the (source, id) keys that were new (a key seen before, or twice here,
    once).  A concurrent claim of the same key waits for the other transaction, and loses if it commits."""
    if not rows:
        return set()
    returned = _insert_rows(
        conn,
        "usage_events",
        _EVENT,
        _event_rows(conn, rows[0]["tenant_id"], rows),
        on_conflict="ON CONFLICT (tenant_id, source, id) DO NOTHING RETURNING source, id",
    )
    return {(s, i) for s, i in returned}


def events_by_key(conn: Connection, tenant_id: str, keys: Iterable[Key]) -> dict[Key, dict[str, Any]]:
    """The stored payload hash and first answer of these events (one statement)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    if conn.dialect.name == "sqlite":
        sql = (
            "SELECT e.source, e.id, e.payload_hash, e.result FROM json_each(?) AS k CROSS JOIN usage_events AS e "
            "ON e.tenant_id = ? AND e.source = json_extract(k.value, '$[0]') AND e.id = json_extract(k.value, '$[1]')"
        )
        rows = conn.exec_driver_sql(sql, (json.dumps(wanted), tenant_id)).all()
        return {(s, i): {"payload_hash": h, "result": json.loads(r)} for s, i, h, r in rows}
    sql = (
        "SELECT e.source, e.id, e.payload_hash, e.result "
        "FROM unnest(%s::text[], %s::text[]) AS k(source, id) JOIN usage_events AS e "
        "ON e.tenant_id = %s AND e.source = k.source AND e.id = k.id"
    )
    rows = conn.exec_driver_sql(sql, ([s for s, _ in wanted], [i for _, i in wanted], tenant_id)).all()
    return {(s, i): {"payload_hash": h, "result": r} for s, i, h, r in rows}


def claims_are_exclusive(conn: Connection) -> bool:
    """SQLite: the transaction holds the database's one write lock, so an event not found is ours to insert."""
    return conn.dialect.name == "sqlite"


_EVENT = (
    ("tenant_id", "text"),
    ("source", "text"),
    ("id", "text"),
    ("payload_hash", "text"),
    ("type", "text"),
    ("time", "timestamptz"),
    ("result", "jsonb"),
    ("received_at", "timestamptz"),
)


def insert_events(conn: Connection, tenant_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """New events with their answers (under `claims_are_exclusive` only)."""
    _insert_rows(
        conn,
        "usage_events",
        _EVENT,
        _event_rows(conn, tenant_id, rows),
    )


def set_results(conn: Connection, tenant_id: str, results: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
    _update_rows(
        conn,
        "usage_events",
        tenant_id,
        [("result", "jsonb")],
        [("source", "text"), ("id", "text")],
        [(json.dumps(r), s, i) for s, i, r in results],
    )


# --- occurrences and the people in them --------------------------------------------------------


def lock_occurrences(
    conn: Connection, tenant_id: str, created: Mapping[str, datetime], others: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """Create the occurrences of `created` that are new (at the given instant), then read (and lock, in id order)
    those and `others` (which are not created)."""
    if created:
        rows = [
            {"tenant_id": tenant_id, "id": o, "counted": 0, "present": 0, "peak": 0, "queue_tail": 0, "created_at": at}
            for o, at in sorted(created.items())
        ]
        conn.execute(_insert(conn)(occurrences).on_conflict_do_nothing(index_elements=["tenant_id", "id"]), rows)
    ids = sorted(set(created) | set(others))
    found: dict[str, dict[str, Any]] = {}
    for part in _slices(ids):
        query = (
            select(occurrences)
            .where(_o.tenant_id == tenant_id, _o.id.in_(list(part)))
            .order_by(_o.id)
            .with_for_update()
        )
        found.update({row["id"]: dict(row) for row in conn.execute(query).mappings()})
    return found


def people_of(
    conn: Connection, tenant_id: str, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for part in _slices(sorted(set(pairs))):
        query = select(occurrence_people).where(
            _p.tenant_id == tenant_id, tuple_(_p.occurrence_id, _p.person_id).in_(list(part))
        )
        found.update({(row["occurrence_id"], row["person_id"]): dict(row) for row in conn.execute(query).mappings()})
    return found


def write_occurrences(conn: Connection, tenant_id: str, rows: Sequence[dict[str, Any]]) -> None:
    keys = ("subscription_id", "started_at", "deadline_at", "counted", "present", "peak")
    if rows:
        conn.execute(_OCC_WRITE, [{"_t": tenant_id, "_id": r["id"], **{k: r[k] for k in keys}} for r in rows])


_PERSON = (
    ("registered_at", "timestamptz"),
    ("counted_at", "timestamptz"),
    ("first_mode", "text"),
    ("present", "boolean"),
    ("waiting_ticket", "integer"),
    ("updated_at", "timestamptz"),
)
_PERSON_KEY = (("occurrence_id", "text"), ("person_id", "text"))


def write_people(
    conn: Connection, tenant_id: str, new: Sequence[dict[str, Any]], changed: Sequence[dict[str, Any]]
) -> None:
    at = _at(conn)

    def values(r: dict[str, Any]) -> tuple[Any, ...]:
        return (
            at(r["registered_at"]),
            at(r["counted_at"]),
            r["first_mode"],
            r["present"],
            r["waiting_ticket"],
            at(r["updated_at"]),
        )

    _insert_rows(
        conn,
        "occurrence_people",
        (("tenant_id", "text"), *_PERSON_KEY, *_PERSON),
        [(tenant_id, r["occurrence_id"], r["person_id"], *values(r)) for r in new],
    )
    _update_rows(
        conn,
        "occurrence_people",
        tenant_id,
        _PERSON,
        _PERSON_KEY,
        [(*values(r), r["occurrence_id"], r["person_id"]) for r in changed],
    )


# --- conversations (A1, A2) ----------------------------------------------------------------------


def lock_conversations(
    conn: Connection, tenant_id: str, first_at: Mapping[str, datetime]
) -> dict[str, dict[str, Any]]:
    """Create the new conversations (no window yet, as `message_in` does), then read and lock them in id order."""
    rows = [
        {
            "tenant_id": tenant_id,
            "id": c,
            "window_started_at": at,
            "window_ends_at": at,
            "window_billed": False,
            "windows": 0,
            "billable": 0,
            "first_message_at": at,
            "last_message_at": at,
        }
        for c, at in sorted(first_at.items())
    ]
    if not rows:
        return {}
    at = _at(conn)
    _insert_rows(
        conn,
        "conversations",
        (
            ("tenant_id", "text"),
            ("id", "text"),
            *_WINDOW,
            ("first_message_at", "timestamptz"),
            ("last_message_at", "timestamptz"),
        ),
        [
            (
                tenant_id,
                r["id"],
                at(r["window_started_at"]),
                at(r["window_ends_at"]),
                False,
                0,
                0,
                at(r["first_message_at"]),
                at(r["last_message_at"]),
            )
            for r in rows
        ],
        on_conflict="ON CONFLICT (tenant_id, id) DO NOTHING",
    )
    found: dict[str, dict[str, Any]] = {}
    for part in _slices(sorted(first_at)):
        query = (
            select(conversations)
            .where(_v.tenant_id == tenant_id, _v.id.in_(list(part)))
            .order_by(_v.id)
            .with_for_update()
        )
        found.update({row["id"]: dict(row) for row in conn.execute(query).mappings()})
    return found


_WINDOW = (
    ("window_started_at", "timestamptz"),
    ("window_ends_at", "timestamptz"),
    ("window_billed", "boolean"),
    ("windows", "integer"),
    ("billable", "integer"),
)


def write_conversations(conn: Connection, tenant_id: str, rows: Sequence[dict[str, Any]]) -> None:
    at = _at(conn)
    _update_rows(
        conn,
        "conversations",
        tenant_id,
        (*_WINDOW, ("last_message_at", "timestamptz")),
        (("id", "text"),),
        [
            (
                at(r["window_started_at"]),
                at(r["window_ends_at"]),
                r["window_billed"],
                r["windows"],
                r["billable"],
                at(r["last_message_at"]),
                r["id"],
            )
            for r in rows
        ],
    )


# --- period pools and the ledger (G3) --------------------------------------------------------------


def pool_counter(
    conn: Connection, *, tenant_id: str, subscription_id: str, meter: str, period_start_at: datetime, lock: bool
) -> tuple[int, int] | None:
    """A counter's (used, carried_in) now, or None before its first unit (`lock`: kept until commit, PostgreSQL)."""
    query = select(_c.used, _c.carried_in).where(
        _c.tenant_id == tenant_id,
        _c.subscription_id == subscription_id,
        _c.meter == meter,
        _c.period_start_at == period_start_at,
    )
    row = conn.execute(query.with_for_update() if lock else query).first()
    return None if row is None else (int(row[0]), int(row[1]))


_RECORD = (
    ("tenant_id", "text"),
    ("id", "text"),
    ("subscription_id", "text"),
    ("meter", "text"),
    ("period_start_at", "timestamptz"),
    ("subject", "text"),
    ("person_id", "text"),
    ("units", "integer"),
    ("at", "timestamptz"),
    ("cause", "text"),
)


def record_units(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    at = _at(conn)
    _insert_rows(
        conn,
        "usage_records",
        _RECORD,
        [
            (
                r["tenant_id"],
                r["id"],
                r["subscription_id"],
                r["meter"],
                at(r["period_start_at"]),
                r["subject"],
                r["person_id"],
                r["units"],
                at(r["at"]),
                r["cause"],
            )
            for r in rows
        ],
    )


# --- late usage (D3) -----------------------------------------------------------------------------


def invoiced_until(conn: Connection, tenant_id: str) -> dict[str, datetime]:
    """Per subscription of the tenant, when its last invoice was issued (late usage stops there, D3)."""
    i = invoices.c
    rows = conn.execute(
        select(i.subscription_id, func.max(i.issued_at)).where(i.tenant_id == tenant_id).group_by(i.subscription_id)
    )
    return {sub: issued for sub, issued in rows if issued is not None}
