"""Queries of batch ingestion: a chunk's state read, and its effects written, in sets.

None commits; `services.ingestion` owns each chunk's transaction.  On PostgreSQL
the chunk's occurrences and conversations are locked in id order (`FOR UPDATE`),
as a live join or message locks its own; a period pool is taken once per
chunk, last, with the guarded `UPDATE ... WHERE used + n <= cap`
(`metering.consume`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import IntegrityError

from farebox.storage.ids import new_ids
from farebox.storage.tables.invoicing import invoices
from farebox.storage.tables.metering import usage_counters

Key = tuple[str, str]  # (source, id)
_c = usage_counters.c


# The per-row statements of a chunk run on the driver's cursor (`_run`: errors still translated by SQLAlchemy, so
# a lost connection is a 503), with values converted here as the column types would: per row, SQLAlchemy's
# statement and type handling cost several times the database's own work (docs/performance.md).  SQLite runs
# one prepared statement for every row (`executemany`); PostgreSQL gets one statement for the whole set, its rows
# sent as one JSON array of arrays (`_pg_rows`: encoded in C, where psycopg's quoting of text arrays cost more
# than the statement), so a set costs one round trip.
Column = tuple[str, str]  # (name, PostgreSQL type)


def _run(conn: Connection, sql: str, args: Any, *, many: bool = False) -> Any:
    """Run `sql` on the driver's cursor inside the unit's transaction; the cursor.  A driver error goes through
    the connection's own handler (a lost connection is invalidated and raised as SQLAlchemy's `DBAPIError`: 503)."""
    cursor = conn.connection.cursor()
    try:
        if many:
            cursor.executemany(sql, args)
        else:
            cursor.execute(sql, args)
    except conn.dialect.loaded_dbapi.Error as error:
        conn._handle_dbapi_exception(error, sql, args, cursor, None)  # noqa: SLF001 - raises, translated
        raise  # pragma: no cover - the handler always raises
    return cursor


def _copy(conn: Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """PostgreSQL: rows that cannot meet a conflict, sent with `COPY` (the server's cheapest way in)."""
    cursor = conn.connection.cursor()
    try:
        with cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
    except conn.dialect.loaded_dbapi.Error as error:
        conn._handle_dbapi_exception(error, sql, (), cursor, None)  # noqa: SLF001 - raises, translated
        raise  # pragma: no cover - the handler always raises
    finally:
        cursor.close()


def _json(value: Any) -> str:
    """JSON text of plain values (keys, rows), as the statements take it."""
    return orjson.dumps(value).decode()


def _pg_rows(columns: Sequence[Column], rows: Sequence[tuple[Any, ...]]) -> tuple[str, str]:
    """PostgreSQL: the rows as one JSON array of arrays (encoded by orjson, parsed by the server; an instant as
    ISO 8601 text), and the select list that reads them back typed from `v`."""
    values = ", ".join(f"(v->>{i})::{t}" for i, (_, t) in enumerate(columns))  # a jsonb column: its JSON text
    return _json(rows), values


def _insert_rows(
    conn: Connection, table: str, columns: Sequence[Column], rows: Sequence[tuple[Any, ...]], *, on_conflict: str = ""
) -> Any:
    """Insert the rows in one statement (SQLite: one prepared statement for every row; PostgreSQL: `COPY`, or
    one `INSERT` of the rows' JSON with `on_conflict`); with `RETURNING` in `on_conflict` (PostgreSQL only), the
    cursor to fetch what it returns."""
    if not rows:
        return None
    names = ", ".join(n for n, _ in columns)
    if conn.dialect.name == "sqlite":
        assert "RETURNING" not in on_conflict, "SQLite returns nothing from executemany"
        sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' for _ in columns)}) {on_conflict}"
        _run(conn, sql, rows, many=True).close()
        return None
    if not on_conflict:
        _copy(conn, f"COPY {table} ({names}) FROM STDIN", rows)
        return None
    data, values = _pg_rows(columns, rows)
    sql = f"INSERT INTO {table} ({names}) SELECT {values} FROM jsonb_array_elements(%s::jsonb) AS v {on_conflict}"
    cursor = _run(conn, sql, (data,))
    if "RETURNING" in on_conflict:
        return cursor
    cursor.close()
    return None


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
        _run(
            conn,
            f"UPDATE {table} SET {assignments} WHERE tenant_id = ? AND {where}",
            [(*r[: len(sets)], tenant_id, *r[len(sets) :]) for r in rows],
            many=True,
        ).close()
        return
    columns = [*sets, *keys]
    data, values = _pg_rows(columns, rows)
    names = ", ".join(n for n, _ in columns)
    assignments = ", ".join(f"{n} = r.{n}" for n, _ in sets)
    where = " AND ".join(f"x.{n} = r.{n}" for n, _ in keys)
    _run(
        conn,
        f"UPDATE {table} AS x SET {assignments} FROM (SELECT {values} FROM jsonb_array_elements(%s::jsonb) AS v) "
        f"AS r({names}) WHERE x.tenant_id = %s AND {where}",
        (data, tenant_id),
    ).close()


def _sqlite_at(value: datetime | str) -> str:
    if isinstance(value, str):
        return value  # as read from SQLite, unchanged
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")


@lru_cache(maxsize=4096)
def _sqlite_instant(value: str | None) -> datetime | None:
    """A UTC instant as SQLite keeps it (`UTCDateTime`: text without a zone), read back aware."""
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=timezone.utc)


def _pg_at(value: datetime) -> str:
    return value.isoformat()


class _Instants(dict[Any, Any]):
    """Instants as bound, each converted once (most instants of a chunk are the same few); None stays None."""

    def __init__(self, convert: Callable[[Any], str]) -> None:
        super().__init__({None: None})
        self._convert = convert

    def __missing__(self, value: Any) -> str:
        found = self[value] = self._convert(value)
        return found


def _at(conn: Connection) -> Callable[[Any], Any]:
    """How a UTC instant is bound: SQLite keeps SQLAlchemy's text form (no zone), PostgreSQL gets ISO 8601 text in
    the rows' JSON (`_pg_rows`)."""
    return _Instants(_sqlite_at if conn.dialect.name == "sqlite" else _pg_at).__getitem__


# --- received events (G4) --------------------------------------------------------------------


def lock_claims(conn: Connection, tenant_id: str) -> None:
    """Make this transaction the only one that records the tenant's events until it ends: SQLite's write lock
    does already; on PostgreSQL a transaction-scoped advisory lock per tenant (only ingestion takes it, and only
    ingestion writes `usage_events`), so an event not found is ours to insert with its answer."""
    if conn.dialect.name == "postgresql":
        _run(conn, "SELECT pg_advisory_xact_lock(hashtextextended(%s, 13))", ("farebox.ingest:" + tenant_id,)).close()


def events_by_key(conn: Connection, tenant_id: str, keys: Iterable[Key]) -> dict[Key, tuple[str, str, str]]:
    """The stored (id, payload hash, first answer as JSON text) of these events: one statement per source (a
    batch has one source or a few), or one for all when they are many."""
    ids: dict[str, list[str]] = {}
    for source, event_id in keys:
        ids.setdefault(source, []).append(event_id)
    if len(ids) > _MANY_SOURCES:
        return _events_by_pair(conn, tenant_id, [(s, i) for s, part in ids.items() for i in part])
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        sql = (
            "SELECT e.id, e.payload_hash, e.result FROM json_each(?) AS k CROSS JOIN usage_events AS e "
            "ON e.tenant_id = ? AND e.source = ? AND e.id = k.value"
        )
    else:  # LATERAL: one primary-key probe per key, whatever the planner guesses of the array's length
        sql = (
            "SELECT e.* FROM jsonb_array_elements_text(%s::jsonb) AS k CROSS JOIN LATERAL (SELECT e.id, "
            "e.payload_hash, e.result::text FROM usage_events AS e "
            "WHERE e.tenant_id = %s AND e.source = %s AND e.id = k) AS e"
        )
    found: dict[Key, tuple[str, str, str]] = {}
    for source, part in ids.items():
        cursor = _run(conn, sql, (_json(part), tenant_id, source))
        try:
            found.update({(source, row[0]): row for row in cursor.fetchall()})
        finally:
            cursor.close()
    return found


_MANY_SOURCES = 8


def _events_by_pair(conn: Connection, tenant_id: str, wanted: Sequence[Key]) -> dict[Key, tuple[str, str, str]]:
    if conn.dialect.name == "sqlite":
        sql = (
            "SELECT e.source, e.id, e.payload_hash, e.result FROM json_each(?) AS k CROSS JOIN usage_events AS e "
            "ON e.tenant_id = ? AND e.source = json_extract(k.value, '$[0]') AND e.id = json_extract(k.value, '$[1]')"
        )
    else:
        sql = (
            "SELECT e.* FROM jsonb_array_elements(%s::jsonb) AS k CROSS JOIN LATERAL (SELECT e.source, e.id, "
            "e.payload_hash, e.result::text FROM usage_events AS e "
            "WHERE e.tenant_id = %s AND e.source = k->>0 AND e.id = k->>1) AS e"
        )
    cursor = _run(conn, sql, (_json(wanted), tenant_id))
    try:
        return {(s, i): (i, h, r) for s, i, h, r in cursor.fetchall()}
    finally:
        cursor.close()


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


def insert_events(conn: Connection, tenant_id: str, rows: Sequence[tuple[Any, ...]], received_at: datetime) -> None:
    """New events under `lock_claims`: (source, id, payload hash, type, time, answer as JSON text) each."""
    at = _at(conn)
    received = at(received_at)
    _insert_rows(
        conn, "usage_events", _EVENT, [(tenant_id, s, i, h, k, at(t), r, received) for s, i, h, k, t, r in rows]
    )


# --- occurrences and the people in them --------------------------------------------------------


def lock_occurrences(
    conn: Connection, tenant_id: str, created: Mapping[str, datetime], others: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """Create the occurrences of `created` that are new (at the given instant), then read (and lock, in id order)
    those and `others` (which are not created)."""
    at = _at(conn)
    _insert_rows(
        conn,
        "occurrences",
        (
            ("tenant_id", "text"),
            ("id", "text"),
            *((n, "integer") for n in ("counted", "present", "peak", "queue_tail")),
            ("created_at", "timestamptz"),
        ),
        [(tenant_id, o, 0, 0, 0, 0, at(when)) for o, when in sorted(created.items())],
        on_conflict="ON CONFLICT (tenant_id, id) DO NOTHING",
    )
    ids = sorted(set(created) | set(others))
    if not ids:
        return {}
    select_list = ", ".join(f"o.{n}" for n in _OCCURRENCE_READ)
    read: Callable[[Any], datetime | None]
    if conn.dialect.name == "sqlite":
        sql = (
            f"SELECT {select_list} FROM occurrences AS o "
            "WHERE o.tenant_id = ? AND o.id IN (SELECT value FROM json_each(?))"
        )
        read = _sqlite_instant
    else:  # LATERAL: one primary-key probe per id, locked in the order of `ids` (sorted)
        sql = (
            f"SELECT o.* FROM jsonb_array_elements_text(%s::jsonb) WITH ORDINALITY AS k(id, n) CROSS JOIN LATERAL "
            f"(SELECT {select_list} FROM occurrences AS o WHERE o.tenant_id = %s AND o.id = k.id FOR UPDATE) AS o "
            "ORDER BY k.n"
        )
        read = _pg_instant
    args = (tenant_id, _json(ids)) if conn.dialect.name == "sqlite" else (_json(ids), tenant_id)
    cursor = _run(conn, sql, args)
    try:
        return {
            i: {
                "id": i,
                "subscription_id": sub,
                "started_at": read(started),
                "deadline_at": read(deadline),
                "ended_at": read(ended),
                "counted": counted,
                "present": present,
                "peak": peak,
                "hosts": hosts,
            }
            for i, sub, started, deadline, ended, counted, present, peak, hosts in cursor.fetchall()
        }
    finally:
        cursor.close()


_OCCURRENCE_READ = (
    "id", "subscription_id", "started_at", "deadline_at", "ended_at", "counted", "present", "peak", "hosts"
)


def _pg_instant(value: datetime | None) -> datetime | None:
    """A `timestamptz` as psycopg reads it (in the session's zone), in UTC (as `UTCDateTime` reads it)."""
    return None if value is None else value.astimezone(timezone.utc)


def people_of(
    conn: Connection, tenant_id: str, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """The known people of these (occurrence, person) pairs (one statement).  On SQLite the instants stay in their
    stored text (`write_people` writes them back as they are): the rules only ask whether they are set."""
    wanted = sorted(set(pairs))
    if not wanted:
        return {}
    names = ("occurrence_id", "person_id", *(n for n, _ in _PERSON))
    select_list = ", ".join(f"p.{n}" for n in names)
    keys: Any = wanted
    if conn.dialect.name == "sqlite":  # the people of each occurrence: no pair to take apart in the statement
        keys = {}
        for occurrence_id, person_id in wanted:
            keys.setdefault(occurrence_id, []).append(person_id)
        sql = (
            f"SELECT {select_list} FROM json_each(?) AS o CROSS JOIN json_each(o.value) AS k CROSS JOIN "
            "occurrence_people AS p ON p.tenant_id = ? AND p.occurrence_id = o.key AND p.person_id = k.value"
        )
    else:  # pairs: grouping them by occurrence (`jsonb_each`) is slower on PostgreSQL (docs/performance.md)
        sql = (
            f"SELECT p.* FROM jsonb_array_elements(%s::jsonb) AS k CROSS JOIN LATERAL (SELECT {select_list} "
            "FROM occurrence_people AS p WHERE p.tenant_id = %s AND p.occurrence_id = k->>0 AND p.person_id = k->>1) "
            "AS p"
        )
    cursor = _run(conn, sql, (_json(keys), tenant_id))
    try:
        return {(row[0], row[1]): dict(zip(names, row, strict=True)) for row in cursor.fetchall()}
    finally:
        cursor.close()


_OCCURRENCE = (
    ("subscription_id", "text"),
    ("started_at", "timestamptz"),
    ("deadline_at", "timestamptz"),
    ("counted", "integer"),
    ("present", "integer"),
    ("peak", "integer"),
    ("hosts", "integer"),
)


def write_occurrences(conn: Connection, tenant_id: str, rows: Sequence[dict[str, Any]]) -> None:
    at = _at(conn)
    values = [
        (
            r["subscription_id"],
            at(r["started_at"]),
            at(r["deadline_at"]),
            r["counted"],
            r["present"],
            r["peak"],
            r["hosts"],
            r["id"],
        )
        for r in rows
    ]
    _update_rows(conn, "occurrences", tenant_id, _OCCURRENCE, (("id", "text"),), values)


_PERSON = (
    ("registered_at", "timestamptz"),
    ("counted_at", "timestamptz"),
    ("first_mode", "text"),
    ("present", "boolean"),
    ("host", "boolean"),
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
            r["host"],
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


def lock_conversations(conn: Connection, tenant_id: str, first_at: Mapping[str, datetime]) -> dict[str, dict[str, Any]]:
    """These conversations: the known ones read (locked in id order on PostgreSQL), the others as `message_in`
    creates them (no window yet: at their first message here), marked `_new`: `create_conversations` writes them
    once the chunk has decided what it does to them."""
    ids = sorted(first_at)
    if not ids:
        return {}
    found = _conversations(conn, tenant_id, ids)
    names = [n for n, _ in _CONVERSATION]
    for c in ids:
        if c not in found:
            at = first_at[c]
            found[c] = {
                **dict(zip(names, (tenant_id, c, at, at, False, None, None, 0, 0, at, at), strict=True)),
                "_new": True,
            }
    return found


def create_conversations(conn: Connection, tenant_id: str, rows: Sequence[dict[str, Any]]) -> bool:
    """Create these `_new` conversations as they are now; False if one was created meanwhile by a live message
    (PostgreSQL), and then none is (the chunk reads them again and decides again)."""
    if not rows:
        return True
    at = _at(conn)
    values = [
        (
            tenant_id,
            r["id"],
            at(r["window_started_at"]),
            at(r["window_ends_at"]),
            r["window_billed"],
            at(r["earlier_started_at"]),
            r["earlier_billed"],
            r["windows"],
            r["billable"],
            at(r["first_message_at"]),
            at(r["last_message_at"]),
        )
        for r in sorted(rows, key=lambda r: r["id"])
    ]
    if conn.dialect.name == "sqlite":  # the write lock is held since the chunk began: nobody created one
        _insert_rows(conn, "conversations", _CONVERSATION, values)
        return True
    names = ", ".join(n for n, _ in _CONVERSATION)
    savepoint = conn.begin_nested()  # COPY is all or nothing: a conflict undoes only this
    try:
        _copy(conn, f"COPY conversations ({names}) FROM STDIN", values)
    except IntegrityError:
        savepoint.rollback()
        return False
    savepoint.commit()
    return True


def drop_conversations(conn: Connection, tenant_id: str, ids: Sequence[str]) -> None:
    """Remove conversations this transaction created (`create_conversations`), to decide their chunk again."""
    if not ids:
        return
    if conn.dialect.name == "sqlite":
        sql = "DELETE FROM conversations WHERE tenant_id = ? AND id IN (SELECT value FROM json_each(?))"
    else:
        sql = "DELETE FROM conversations WHERE tenant_id = %s AND id IN (SELECT jsonb_array_elements_text(%s::jsonb))"
    _run(conn, sql, (tenant_id, _json(list(ids)))).close()


def _conversations(conn: Connection, tenant_id: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    names = [n for n, _ in _CONVERSATION]
    select_list = ", ".join(f"c.{n}" for n in names)
    if conn.dialect.name == "sqlite":
        sql = (
            f"SELECT {select_list} FROM conversations AS c "
            "WHERE c.tenant_id = ? AND c.id IN (SELECT value FROM json_each(?))"
        )
        cursor = _run(conn, sql, (tenant_id, _json(list(ids))))
        read = _sqlite_instant
        rows = [
            (t, i, read(ws), read(we), bool(b), read(es), eb, w, n, read(f), read(last))
            for t, i, ws, we, b, es, eb, w, n, f, last in cursor.fetchall()
        ]
    else:
        sql = (  # LATERAL: one primary-key probe per id, locked in the order of `ids` (sorted)
            f"SELECT c.* FROM jsonb_array_elements_text(%s::jsonb) WITH ORDINALITY AS k(id, n) CROSS JOIN LATERAL "
            f"(SELECT {select_list} FROM conversations AS c WHERE c.tenant_id = %s AND c.id = k.id FOR UPDATE) AS c "
            "ORDER BY k.n"
        )
        cursor = _run(conn, sql, (_json(list(ids)), tenant_id))
        utc = timezone.utc
        rows = [
            (t, i, ws.astimezone(utc), we.astimezone(utc), b, es and es.astimezone(utc), eb, w, n,
             f.astimezone(utc), last.astimezone(utc))
            for t, i, ws, we, b, es, eb, w, n, f, last in cursor.fetchall()
        ]
    cursor.close()
    return {r[1]: dict(zip(names, r, strict=True)) for r in rows}


_WINDOW = (
    ("window_started_at", "timestamptz"),
    ("window_ends_at", "timestamptz"),
    ("window_billed", "boolean"),
    ("earlier_started_at", "timestamptz"),
    ("earlier_billed", "boolean"),
    ("windows", "integer"),
    ("billable", "integer"),
)
_CONVERSATION = (
    ("tenant_id", "text"),
    ("id", "text"),
    *_WINDOW,
    ("first_message_at", "timestamptz"),
    ("last_message_at", "timestamptz"),
)


def write_conversations(conn: Connection, tenant_id: str, rows: Sequence[dict[str, Any]]) -> None:
    """What the chunk did to conversations that existed before it."""
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
                at(r["earlier_started_at"]),
                r["earlier_billed"],
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


def record_units(
    conn: Connection,
    tenant_id: str,
    subscription_id: str,
    period_start_at: datetime,
    rows: Sequence[tuple[str, str, str | None, datetime, str]],
) -> None:
    """One unit each in the ledger (G3): (meter, subject, person, at, cause)."""
    at = _at(conn)
    start = at(period_start_at)
    ids = new_ids("use", len(rows))
    _insert_rows(
        conn,
        "usage_records",
        _RECORD,
        [
            (tenant_id, ids[n], subscription_id, meter, start, subject, person, 1, at(when), cause)
            for n, (meter, subject, person, when, cause) in enumerate(rows)
        ],
    )


# --- late usage ----------------------------------------------------------------------------------


def invoiced_until(conn: Connection, tenant_id: str) -> dict[str, datetime]:
    """Per subscription of the tenant, when its last invoice was issued (late usage stops there, D3)."""
    i = invoices.c
    rows = conn.execute(
        select(i.subscription_id, func.max(i.issued_at)).where(i.tenant_id == tenant_id).group_by(i.subscription_id)
    )
    return {sub: issued for sub, issued in rows if issued is not None}
