"""Stored first answers for idempotency keys (G4)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select

from farebox.adapters.db.tables.core import idempotency_keys


def get(conn: Connection, scope: str, key: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(idempotency_keys).where(idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)
    ).mappings().first()
    return dict(row) if row else None


def put(conn: Connection, **values: Any) -> None:
    conn.execute(insert(idempotency_keys).values(**values))
