"""Due items: work that falls due at an instant (renewals, trial ends, grace ends...)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from farebox.storage.tables.core import due_items, tenants


def schedule(conn: Connection, **values: Any) -> bool:
    """Insert a due item unless the same (tenant, kind, ref, due_at) exists; True if inserted."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    result = conn.execute(
        insert(due_items).values(**values).on_conflict_do_nothing(
            index_elements=["tenant_id", "kind", "ref", "due_at"]
        )
    )
    return result.rowcount == 1


def schedule_all(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """`schedule` of many items, one statement executed for all (duplicates ignored)."""
    if rows:
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        conn.execute(
            insert(due_items).on_conflict_do_nothing(index_elements=["tenant_id", "kind", "ref", "due_at"]), list(rows)
        )


def cancel(conn: Connection, tenant_id: str, *, kind: str, ref: str, now: datetime) -> int:
    result = conn.execute(
        update(due_items)
        .where(
            due_items.c.tenant_id == tenant_id,
            due_items.c.kind == kind,
            due_items.c.ref == ref,
            due_items.c.done_at.is_(None),
        )
        .values(done_at=now, outcome="cancelled")
    )
    return result.rowcount


def cancel_all(conn: Connection, *, kind: str, refs: Sequence[tuple[str, str, datetime]]) -> None:
    """`cancel` of each `(tenant_id, ref, now)`, one statement executed for all."""
    if refs:
        statement = (
            update(due_items)
            .where(
                due_items.c.tenant_id == bindparam("t"),
                due_items.c.kind == kind,
                due_items.c.ref == bindparam("r"),
                due_items.c.done_at.is_(None),
            )
            .values(done_at=bindparam("now"), outcome="cancelled")
        )
        conn.execute(statement, [{"t": t, "r": r, "now": now} for t, r, now in refs])


def next_for_clock(conn: Connection, clock_id: str, until: datetime) -> dict[str, Any] | None:
    """The earliest pending item of any tenant on a test clock, due at or before `until`."""
    row = conn.execute(
        select(due_items)
        .join(tenants, tenants.c.id == due_items.c.tenant_id)
        .where(tenants.c.test_clock_id == clock_id, due_items.c.done_at.is_(None), due_items.c.due_at <= until)
        .order_by(due_items.c.due_at, due_items.c.created_at, due_items.c.id)
        .limit(1)
    ).mappings().first()
    return dict(row) if row else None


def claim_real_time(conn: Connection, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Pending items of tenants on the real clock that are due; locked so two
    workers never take the same one (SKIP LOCKED on PostgreSQL; SQLite has
    one writer at a time)."""
    query = (
        select(due_items)
        .join(tenants, tenants.c.id == due_items.c.tenant_id)
        .where(tenants.c.test_clock_id.is_(None), due_items.c.done_at.is_(None), due_items.c.due_at <= now)
        .order_by(due_items.c.due_at, due_items.c.created_at, due_items.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=due_items)
    return [dict(r) for r in conn.execute(query).mappings()]


def lock_pending(conn: Connection, tenant_id: str, item_id: str) -> dict[str, Any] | None:
    query = select(due_items).where(
        due_items.c.tenant_id == tenant_id, due_items.c.id == item_id, due_items.c.done_at.is_(None)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = conn.execute(query).mappings().first()
    return dict(row) if row else None


def mark_done(conn: Connection, tenant_id: str, item_id: str, *, now: datetime, outcome: str) -> None:
    conn.execute(
        update(due_items)
        .where(due_items.c.tenant_id == tenant_id, due_items.c.id == item_id)
        .values(done_at=now, outcome=outcome)
    )


def pending(conn: Connection, tenant_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(due_items)
        .where(due_items.c.tenant_id == tenant_id, due_items.c.done_at.is_(None))
        .order_by(due_items.c.due_at, due_items.c.created_at)
    )
    return [dict(r) for r in rows.mappings()]


def count_pending(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(due_items).where(due_items.c.done_at.is_(None))).scalar_one()
