"""Engines for the embedded SQLite default and for PostgreSQL (psycopg 3)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool, QueuePool

from farebox.storage.writer_queue import WriterQueue

DEFAULT_URL = "sqlite:///./var/farebox.db"
_BUSY_SECONDS = 30  # as long as SQLite's busy_timeout below


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """A process's connection pool: `size` kept open, `max_overflow` more on demand, and how many
    seconds a request waits for one before it fails (the API answers 503 `storage_unavailable`)."""

    size: int = 10
    max_overflow: int = 10
    timeout: float = 10.0

    def options(self) -> dict[str, Any]:
        return {"pool_size": self.size, "max_overflow": self.max_overflow, "pool_timeout": self.timeout}


class WouldWait(Exception):
    """Raised, inside `without_waiting()`, by a write transaction that could not take SQLite's write lock in time.

    It is raised by the BEGIN, so nothing has been read or written in that transaction."""


@dataclass(slots=True)
class _NoWait:
    turn: float
    committed: bool = False


_nowait: ContextVar[_NoWait | None] = ContextVar("farebox_nowait", default=None)
_short: ContextVar[bool] = ContextVar("farebox_short_writes", default=False)


@contextmanager
def without_waiting(turn: float = 0.0) -> Iterator[None]:
    """Inside, until a transaction of the block has committed: a write transaction begun on a SQLite engine
    waits at most `turn` seconds for this process's writer turn, and only while nothing but `short_writes()`
    are ahead of it, and not at all for SQLite's own lock (another process); else its BEGIN raises
    `WouldWait`, with nothing of the block written (what began before was rolled back).  Once one has
    committed, later ones wait as usual: a refusal then would leave the committed one behind.  Writes
    inside count as short ones.  On PostgreSQL nothing changes."""
    token = _nowait.set(_NoWait(turn))
    try:
        with short_writes():
            yield
    finally:
        _nowait.reset(token)


def free_connections(engine: Engine) -> int | None:
    """How many connections `engine.connect()` can hand out now without waiting (None: not a sized pool)."""
    pool = engine.pool
    if not isinstance(pool, QueuePool):
        return None
    return pool.checkedin() + max(0, pool._max_overflow - pool.overflow())  # noqa: SLF001 - its configured limit


@contextmanager
def short_writes() -> Iterator[None]:
    """Inside: write transactions are short ones (an admission decision), which `without_waiting` may queue
    behind (`WriterQueue`)."""
    token = _short.set(True)
    try:
        yield
    finally:
        _short.reset(token)


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use the psycopg 3 driver for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(
    url: str = DEFAULT_URL, *, pool: bool = True, pool_settings: PoolSettings | None = None, **kwargs: Any
) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    sizes = (pool_settings or PoolSettings()).options() if pool else {}
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database, sizes)
    options: dict[str, Any] = {**sizes, **kwargs}
    if not pool:
        options["poolclass"] = NullPool
    return create_engine(url, **options)


def _sqlite_engine(url: str, database: str | None, sizes: dict[str, Any]) -> Engine:
    file = bool(database) and database != ":memory:"
    if file:
        Path(str(database)).parent.mkdir(parents=True, exist_ok=True)
    # A file database gets a queue pool sized like PostgreSQL's; an in-memory one keeps SQLAlchemy's own pool.
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **(sizes if file else {}))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below), so that a write transaction takes
        # the database's one write lock up front: no lock upgrades, no
        # SQLITE_BUSY half-way through a decision.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_SECONDS * 1000}")
        if file:
            # checkpoints run on the checkpointer's thread (below), not in the commit of a decision
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    writers = WriterQueue()
    held = "farebox_writer_turn"

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        readonly = connection.get_execution_options().get("farebox_readonly", False)
        # Straight to the driver: this runs once per unit of work (every
        # admission decision) and returns no rows.  A failure (the write lock
        # not obtained within busy_timeout) is raised as SQLAlchemy would
        # raise it, so the API still answers 503 storage_unavailable.
        statement = "BEGIN" if readonly else "BEGIN IMMEDIATE"
        info = connection.connection.info
        driver = connection.connection.driver_connection
        nowait = None if readonly else _nowait.get()
        if nowait is not None and not nowait.committed:
            if not writers.acquire(nowait.turn, short=True, behind_short=True):
                raise WouldWait
            info[held] = threading.get_ident()
            _begin_at_once(driver, info)
            return
        if not readonly:
            if not writers.acquire(_BUSY_SECONDS, short=_short.get()):
                error = sqlite3.OperationalError("database is locked (waited for this process's other writers)")
                raise DBAPIError.instance(statement, None, error, sqlite3.Error, dialect=connection.dialect)
            info[held] = threading.get_ident()
        try:
            driver.execute(statement)
        except sqlite3.Error as error:
            _end_turn(info)
            raise DBAPIError.instance(statement, None, error, sqlite3.Error, dialect=connection.dialect) from error

    def _begin_at_once(driver: sqlite3.Connection, info: dict[str, Any]) -> None:
        """BEGIN IMMEDIATE without SQLite's busy wait: another process holding the lock is `WouldWait`."""
        try:
            driver.execute("PRAGMA busy_timeout=0")
            try:
                driver.execute("BEGIN IMMEDIATE")
            finally:
                driver.execute(f"PRAGMA busy_timeout={_BUSY_SECONDS * 1000}")
        except sqlite3.Error as error:
            _end_turn(info)
            if error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:  # and its extended codes
                raise WouldWait from error
            raise DBAPIError.instance(
                "BEGIN IMMEDIATE", None, error, sqlite3.Error, dialect=engine.dialect
            ) from error

    def _end_turn(info: dict[str, Any]) -> None:
        owner = info.pop(held, None)
        if owner is not None:
            writers.release(owner)

    # The turn ends once the transaction has ended: COMMIT and ROLLBACK are issued here (SQLAlchemy's
    # own call then finds no transaction open, which the driver treats as nothing to do).
    def _finish(connection: Any, statement: str) -> None:
        driver = connection.connection.driver_connection
        try:
            if driver.in_transaction:
                driver.execute(statement)
        except sqlite3.Error as error:
            if statement == "COMMIT":
                raise DBAPIError.instance(statement, None, error, sqlite3.Error, dialect=connection.dialect) from error
            # a failed ROLLBACK: SQLAlchemy's own rollback follows, and invalidates a broken connection
        finally:
            if statement == "ROLLBACK" or not driver.in_transaction:
                _end_turn(connection.connection.info)
        nowait = _nowait.get()
        if statement == "COMMIT" and nowait is not None:
            nowait.committed = True

    event.listen(engine, "commit", lambda connection: _finish(connection, "COMMIT"))
    event.listen(engine, "rollback", lambda connection: _finish(connection, "ROLLBACK"))

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        # A connection returned to the pool (or discarded) mid-transaction gives its turn back too.
        _end_turn(record.info)

    if file:
        _checkpointer.watch(engine, str(database), writers)
    return engine


class _Checkpointer:
    """Copies SQLite's write-ahead log into the database file every `interval` seconds, on its own thread.

    SQLite's automatic checkpoint runs inside the COMMIT that passes 1,000 pages of log: that one
    decision pays for writing (and syncing) the pages of the ~200 before it, which set the p99 of
    admission (bench/admission.py: 4 ms with it, under 1 ms without).  A PASSIVE checkpoint takes
    no write lock, so writers go on meanwhile (the driver releases the GIL while it runs).  One
    daemon thread serves every open file database of the process, checkpointing only those whose
    log changed since (and keeping a connection open only to those written in the last seconds);
    a collected engine is dropped, and a file that no longer exists is never created again
    (`mode=rw`).
    """

    interval = 0.05
    idle = 2.0  # seconds without writes after which its connection is closed
    restart_frames = 4000  # pages of log (~16 MB) after which the log is made to start over

    def __init__(self) -> None:
        self._engines: weakref.WeakKeyDictionary[Engine, tuple[str, WriterQueue]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._reopen: set[str] = set()  # a new engine on a path: the file may be a new one

    def watch(self, engine: Engine, path: str, writers: WriterQueue) -> None:
        with self._lock:
            resolved = str(Path(path).resolve())
            self._engines[engine] = (resolved, writers)
            self._reopen.add(resolved)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="farebox-sqlite-checkpoint", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        connections: dict[str, sqlite3.Connection] = {}
        seen: dict[str, tuple[int, int]] = {}  # the log's (mtime, size) when last checkpointed
        active: dict[str, float] = {}
        while True:
            time.sleep(self.interval)
            with self._lock:
                queues = dict(self._engines.values())
                paths = set(queues)
                reopen, self._reopen = self._reopen, set()
            for path in (set(connections) - paths) | (reopen & set(connections)):
                connections.pop(path).close()
            for path in set(seen) - paths:
                seen.pop(path, None)
                active.pop(path, None)
            now = time.monotonic()
            for path in paths:
                try:
                    log = os.stat(f"{path}-wal")
                except OSError:  # no log (yet, or the file is gone)
                    continue
                if seen.get(path) == (log.st_mtime_ns, log.st_size):
                    if path in connections and now - active.get(path, now) > self.idle:
                        connections.pop(path).close()  # held open only while the database is being written
                    continue
                try:
                    db = connections.get(path)
                    if db is None:
                        db = connections[path] = sqlite3.connect(
                            f"file:{path}?mode=rw", uri=True, isolation_level=None, check_same_thread=False
                        )
                        db.execute("PRAGMA busy_timeout=0")
                    _, frames, _ = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if frames > self.restart_frames:
                        self._restart(db, queues[path])
                    seen[path], active[path] = (log.st_mtime_ns, log.st_size), now
                except sqlite3.Error:  # busy, or the file is gone: try again next time
                    stale = connections.pop(path, None)
                    if stale is not None:
                        stale.close()

    def _restart(self, db: sqlite3.Connection, writers: WriterQueue) -> None:
        """Let the log start over.  A PASSIVE checkpoint under a steady stream of commits never
        catches up with the last one, so the log is never reused and grows without end; with this
        process's writers held back (their queue's turn), a RESTART copies the few pages the PASSIVE
        one left and the next commit writes the log from its start.  Its turn is a short one (a few
        milliseconds): the API's event loop waits for it rather than sending decisions to threads."""
        if not writers.acquire(1.0, short=True):
            return
        try:
            db.execute("PRAGMA busy_timeout=10")  # another process's writer, or a reader: else the next time
            db.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
        finally:
            db.execute("PRAGMA busy_timeout=0")
            writers.release(threading.get_ident())


_checkpointer = _Checkpointer()

