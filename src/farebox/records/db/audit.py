"""Audit-log rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select

from farebox.storage.tables.audit import audit_log


def append(conn: Connection, **values: Any) -> None:
    conn.execute(insert(audit_log).values(**values))


def entries(
    conn: Connection, *, tenant_id: str | None, limit: int, kind_prefix: str | None = None
) -> list[dict[str, Any]]:
    """Newest first; `tenant_id=None` reads every scope (the operator's view).  One tenant's entries are
    ordered by its own time (a test clock's, or the real one); the operator's view mixes tenants on
    different clocks, so it is ordered as the entries were recorded (ids grow with the real time)."""
    order = (audit_log.c.at.desc(), audit_log.c.id.desc()) if tenant_id is not None else (audit_log.c.id.desc(),)
    query = select(audit_log).order_by(*order).limit(limit)
    if tenant_id is not None:
        query = query.where(audit_log.c.tenant_id == tenant_id)
    if kind_prefix:
        query = query.where(audit_log.c.kind.startswith(kind_prefix, autoescape=True))
    return [dict(r) for r in conn.execute(query).mappings()]
