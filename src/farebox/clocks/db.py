"""Test clocks (G2)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from farebox.storage.tables.core import tenants, test_clocks


def insert_clock(conn: Connection, **values: Any) -> None:
    conn.execute(insert(test_clocks).values(**values))


def get_clock(conn: Connection, clock_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
    query = select(test_clocks).where(test_clocks.c.id == clock_id)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    return dict(row) if row else None


def list_clocks(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(test_clocks).order_by(test_clocks.c.created_at)).mappings()]


def set_clock(conn: Connection, clock_id: str, now_at: datetime) -> None:
    conn.execute(update(test_clocks).where(test_clocks.c.id == clock_id).values(now_at=now_at))


def tenants_on_clock(conn: Connection, clock_id: str) -> list[str]:
    return list(
        conn.execute(select(tenants.c.id).where(tenants.c.test_clock_id == clock_id).order_by(tenants.c.id)).scalars()
    )


# On every admission decision: built once, with a bind parameter.
_TENANT_CLOCK_TIME = (
    select(tenants.c.id, test_clocks.c.now_at)
    .select_from(tenants.outerjoin(test_clocks, tenants.c.test_clock_id == test_clocks.c.id))
    .where(tenants.c.id == bindparam("tenant_id"))
)


def tenant_clock_time(conn: Connection, tenant_id: str) -> tuple[bool, datetime | None]:
    """(tenant exists, the test clock's time or None when on the real clock)."""
    row = conn.execute(_TENANT_CLOCK_TIME, {"tenant_id": tenant_id}).first()
    if row is None:
        return False, None
    return True, row.now_at
