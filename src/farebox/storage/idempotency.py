"""Stored first answers for idempotency keys (G4), scoped to (tenant, principal):
replayed only to a caller the same authorization lets through."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, tuple_

from farebox.storage.tables.core import idempotency_keys


def get(conn: Connection, tenant_id: str, principal: str, key: str) -> dict[str, Any] | None:
    t = idempotency_keys.c
    row = conn.execute(
        select(idempotency_keys).where(t.tenant_id == tenant_id, t.principal == principal, t.key == key)
    ).mappings().first()
    return dict(row) if row else None


def put(conn: Connection, **values: Any) -> None:
    conn.execute(insert(idempotency_keys).values(**values))


def delete_created_before(conn: Connection, cutoff: datetime, *, limit: int) -> int:
    """Forget up to `limit` keys (and their stored answers) created at or before `cutoff`."""
    t = idempotency_keys.c
    oldest = select(t.tenant_id, t.principal, t.key).where(t.created_at <= cutoff).order_by(t.created_at).limit(limit)
    return conn.execute(delete(idempotency_keys).where(tuple_(t.tenant_id, t.principal, t.key).in_(oldest))).rowcount
