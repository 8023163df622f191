"""Unit of work: one database transaction that a service use case owns."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import TracebackType
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine

from farebox.storage.repositories import SqlMeteringRepository, SqlSubscriptionRepository

if TYPE_CHECKING:
    from farebox.ports import Ports

_ambient: ContextVar[UnitOfWork | None] = ContextVar("farebox_ambient_uow", default=None)
_deferred: ContextVar[list[Callable[[], None]] | None] = ContextVar("farebox_deferred_hooks", default=None)


@contextmanager
def after_commit_deferred(hooks: list[Callable[[], None]]) -> Iterator[None]:
    """Inside: the after-commit hooks of the units that commit are added to `hooks` instead of run; the caller
    runs them (`run_after_commit(hooks)`) where it may wait on the network (the API's event loop hands them
    to a worker thread)."""
    token = _deferred.set(hooks)
    try:
        yield
    finally:
        _deferred.reset(token)


def run_after_commit(hooks: list[Callable[[], None]]) -> None:
    """Run committed units' hooks in order, outside any transaction and any ambient unit."""
    token = _ambient.set(None)  # a unit opened by a hook is its own transaction, not the committed one
    try:
        for fn in hooks:
            fn()
    finally:
        _ambient.reset(token)


class UnitOfWork:
    """`with fb.uow() as uow: ...; uow.commit()`.

    Leaving the block without `commit()` rolls everything back, so a request
    that fails half-way writes nothing.  On SQLite a write unit takes the
    write lock at BEGIN (see `engine.py`); `readonly=True` does not.

    Units nest: while one is open as the *ambient* unit (`ambient()`), a unit
    opened inside it joins its transaction and its `commit()` is deferred to
    the outer one.  The API uses this to store an idempotency key's answer in
    the same transaction as the change it describes (G4).

    Network I/O (a payment provider, SMTP, webhooks) never runs inside a
    unit: it is registered with `after_commit(fn)` and runs once the
    transaction (the outermost one, for a joined unit) has committed, outside
    any transaction and any ambient unit, so a unit fn opens is its own.  A
    rollback drops what was registered.
    """

    def __init__(self, engine: Engine, *, readonly: bool = False, ports: Ports | None = None) -> None:
        self._engine = engine
        self._readonly = readonly
        self._ports = ports
        self._conn: Connection | None = None
        self._outer: UnitOfWork | None = None
        self._token: Token[UnitOfWork | None] | None = None
        self._after_commit: list[Callable[[], None]] = []

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def conn(self) -> Connection:
        if self._outer is not None:
            return self._outer.conn
        if self._conn is None:
            raise RuntimeError("the unit of work is not open")
        return self._conn

    @property
    def ports(self) -> Ports:
        """The payment provider, usage source, invoice numbering and mailers `bootstrap` wired (`farebox.ports`)."""
        if self._ports is None:
            raise RuntimeError("this unit of work was opened without the container's ports: use fb.uow()")
        return self._ports

    @property
    def subscriptions(self) -> SqlSubscriptionRepository:
        return SqlSubscriptionRepository(self.conn)

    @property
    def metering(self) -> SqlMeteringRepository:
        return SqlMeteringRepository(self.conn)

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def __enter__(self) -> UnitOfWork:
        outer = _ambient.get()
        if outer is not None and outer._engine is self._engine:
            self._outer = outer
            return self
        conn = self._engine.connect()
        try:
            if self._readonly:
                conn = conn.execution_options(farebox_readonly=True)
            conn.begin()
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return self

    def ambient(self) -> UnitOfWork:
        """Make this open unit the one that units opened inside join."""
        self._token = _ambient.set(self)
        return self

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run `fn` once this unit's transaction has committed (never if it rolls back)."""
        if self._outer is not None:
            self._outer.after_commit(fn)
        else:
            self._after_commit.append(fn)

    def commit(self) -> None:
        if self._outer is None:
            self.conn.commit()  # on SQLite this ends the writer's turn (`engine.py`): hooks run without it
            self._run_after_commit()

    def rollback(self) -> None:
        if self._outer is None:
            self._after_commit.clear()
            self.conn.rollback()

    def _run_after_commit(self) -> None:
        hooks, self._after_commit = self._after_commit, []
        if not hooks:
            return
        deferred = _deferred.get()
        if deferred is not None:
            deferred.extend(hooks)
            return
        run_after_commit(hooks)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._outer is not None:
            self._outer = None
            return
        if self._token is not None:
            _ambient.reset(self._token)
            self._token = None
        conn, self._conn = self._conn, None
        self._after_commit.clear()
        if conn is None:
            return
        try:
            if conn.in_transaction():
                conn.rollback()
        finally:
            conn.close()
