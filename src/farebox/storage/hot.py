"""Hot statements: compiled once per dialect (and set of columns), run on the driver's cursor.

On the admission hot path SQLAlchemy's per-execute work (execution context, result set-up)
costs many times the statement itself on SQLite (docs/performance.md).  A `Hot` statement
keeps SQLAlchemy's compiler and its type processing (bind and result processors, so
`UTCDateTime` behaves as everywhere else) and its error translation (a driver error goes
through the connection's own handler: a lost connection is invalidated and raised as
SQLAlchemy's `DBAPIError`, which the API answers with 503 and nothing written), and skips
the rest.  It runs inside the unit of work's transaction, on the same driver connection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.sql import ClauseElement

from farebox.storage.types import UTCDateTime


def _sqlite_bind(value: datetime | None) -> str | None:
    """`UTCDateTime` then SQLite's DATETIME bind: "YYYY-MM-DD HH:MM:SS.ffffff", naive UTC (a naive input refused)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} refused: farebox stores aware UTC only (G2)")
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_result(value: str | None) -> datetime | None:
    """SQLite's DATETIME result then `UTCDateTime`: an aware UTC datetime."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    order: Sequence[str] | None  # bind names in order (qmark/format styles); None: named style
    binds: dict[str, Callable[[Any], Any]]
    fixed: dict[str, Any]  # values bound in the statement itself (a LIMIT), used when not given
    names: tuple[str, ...]  # result column names
    results: tuple[Callable[[Any], Any] | None, ...]


class Hot:
    """A Core statement run on the driver's cursor.  `column_keys`: compile per set of value keys
    (an INSERT or UPDATE whose columns are given at execution)."""

    def __init__(self, statement: ClauseElement, *, by_keys: bool = False) -> None:
        self._statement = statement
        self._by_keys = by_keys
        self._cache: dict[tuple[str, frozenset[str] | None], _Compiled] = {}

    def _compiled(self, conn: Connection, keys: frozenset[str] | None) -> _Compiled:
        dialect = conn.dialect
        found = self._cache.get((dialect.name, keys))
        if found is not None:
            return found
        kw: dict[str, Any] = {"column_keys": sorted(keys)} if keys is not None else {}
        compiled = self._statement.compile(dialect=dialect, **kw)
        binds = dict(getattr(compiled, "_bind_processors"))  # noqa: B009 - SQLAlchemy's own processors
        params: dict[str, Any] = getattr(compiled, "binds")  # noqa: B009 - the statement's bind parameters
        columns = getattr(compiled, "_result_columns", None) or []
        names = tuple(c[0] for c in columns)
        results = tuple(c[3]._cached_result_processor(dialect, None) for c in columns)  # noqa: SLF001
        if dialect.name == "sqlite":  # the same values as SQLAlchemy's processors, from C (`fromisoformat`)
            for name, bind in params.items():
                if name in binds and isinstance(bind.type, UTCDateTime):
                    binds[name] = _sqlite_bind
            kinds = (c[3] for c in columns)
            results = tuple(
                _sqlite_result if isinstance(kind, UTCDateTime) else proc
                for kind, proc in zip(kinds, results, strict=True)
            )
        order = getattr(compiled, "positiontup", None) if getattr(compiled, "positional", False) else None
        fixed = {k: b.value for k, b in params.items() if b.value is not None and not b.callable}
        found = _Compiled(str(compiled), tuple(order) if order is not None else None, binds, fixed, names, results)
        self._cache[(dialect.name, keys)] = found
        return found

    def execute(self, conn: Connection, params: dict[str, Any]) -> Any:
        """Run it; the driver's cursor (rows not yet fetched)."""
        c = self._compiled(conn, frozenset(params) if self._by_keys else None)
        binds = c.binds
        if c.fixed:
            params = {**c.fixed, **params}
        if c.order is not None:
            args: Any = tuple(binds[n](params[n]) if n in binds else params[n] for n in c.order)
        else:
            args = {n: (binds[n](v) if n in binds else v) for n, v in params.items()}
        cursor = conn.connection.cursor()
        # listeners see hot statements too; with none, nothing is dispatched (the engine's own
        # begin/commit hooks make `_has_events` true on SQLite)
        dispatch = conn.dispatch
        events = (conn._has_events or conn.engine._has_events) and bool(  # noqa: SLF001
            dispatch.before_cursor_execute or dispatch.after_cursor_execute
        )
        if events:
            dispatch.before_cursor_execute(conn, cursor, c.sql, args, None, False)
        try:
            cursor.execute(c.sql, args)
        except conn.dialect.loaded_dbapi.Error as error:
            conn._handle_dbapi_exception(error, c.sql, args, cursor, None)  # noqa: SLF001 - raises, translated
            raise  # pragma: no cover - the handler always raises
        if events:
            dispatch.after_cursor_execute(conn, cursor, c.sql, args, None, False)
        return cursor

    def first(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any] | None:
        """The first row as a dict of result column names, with SQLAlchemy's result processing."""
        row = self.first_raw(conn, params)
        return None if row is None else self.process(conn, row)

    def first_raw(self, conn: Connection, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """The first row as the driver returned it (see `process`)."""
        cursor = self.execute(conn, params)
        try:
            row: tuple[Any, ...] | None = cursor.fetchone()
            return row
        finally:
            cursor.close()

    def process(self, conn: Connection, row: tuple[Any, ...], start: int = 0) -> dict[str, Any]:
        """A driver's row (its cells from column `start` on) as a dict of result column names, with
        SQLAlchemy's result processing."""
        c = self._compiled(conn, None)
        cells = zip(c.names[start:], c.results[start:], row, strict=True)
        return {name: (proc(v) if proc is not None else v) for name, proc, v in cells}

    def run(self, conn: Connection, params: dict[str, Any]) -> None:
        self.execute(conn, params).close()
