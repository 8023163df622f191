"""A process cache of rows that never change once written (plan versions), kept
apart per database.

Ids are only unique within one database: a process that opens several (the
tests, `farebox scenario run`, `farebox demo`) must never read database A's plan
version 3 for database B's.  The cache is keyed by the engine first (weakly, so a
disposed engine takes its entries with it), then by the row's key.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from sqlalchemy import Connection
from sqlalchemy.engine import Engine

V = TypeVar("V")


class ImmutableRowCache(Generic[V]):
    def __init__(self, max_entries: int = 50_000) -> None:
        self._by_engine: weakref.WeakKeyDictionary[Engine, dict[Hashable, V]] = weakref.WeakKeyDictionary()
        self._max = max_entries

    def get(self, conn: Connection, key: Hashable, load: Callable[[], V]) -> V:
        engine = conn.engine
        entries = self._by_engine.get(engine)
        if entries is None:
            entries = self._by_engine[engine] = {}
        value = entries.get(key)
        if value is None:
            if len(entries) >= self._max:
                entries.clear()
            value = entries[key] = load()
        return value

    def forget(self, conn: Connection, key: Hashable) -> None:
        entries = self._by_engine.get(conn.engine)
        if entries is not None:
            entries.pop(key, None)

    def clear(self) -> None:
        self._by_engine.clear()
