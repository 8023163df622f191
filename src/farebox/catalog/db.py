"""Catalogs and plan versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, true, update

from farebox.storage.tables.core import catalogs, plan_versions


def upsert_catalog(
    conn: Connection, *, name: str, title: str, currency: str, document: dict[str, Any], now: datetime
) -> None:
    exists = conn.execute(select(catalogs.c.name).where(catalogs.c.name == name)).first()
    values = {"title": title, "currency": currency, "document": document, "loaded_at": now}
    if exists:
        conn.execute(update(catalogs).where(catalogs.c.name == name).values(**values))
    else:
        conn.execute(insert(catalogs).values(name=name, **values))


def get_catalog(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(catalogs).where(catalogs.c.name == name)).mappings().first()
    return dict(row) if row else None


def list_catalogs(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(catalogs).order_by(catalogs.c.name)).mappings()]


def current_plan_version(conn: Connection, catalog: str, code: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(plan_versions).where(
            plan_versions.c.catalog == catalog, plan_versions.c.code == code, plan_versions.c.current.is_(True)
        )
    ).mappings().first()
    return dict(row) if row else None


def plan_version(conn: Connection, version_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(plan_versions).where(plan_versions.c.id == version_id)).mappings().first()
    return dict(row) if row else None


def add_plan_version(
    conn: Connection, *, catalog: str, code: str, fingerprint: str, document: dict[str, Any], now: datetime
) -> int:
    """Record a new version of a plan and make it the current one; return its id."""
    latest = conn.execute(
        select(func.max(plan_versions.c.version)).where(
            plan_versions.c.catalog == catalog, plan_versions.c.code == code
        )
    ).scalar()
    conn.execute(
        update(plan_versions)
        .where(plan_versions.c.catalog == catalog, plan_versions.c.code == code)
        .values(current=False)
    )
    return conn.execute(
        insert(plan_versions)
        .values(
            catalog=catalog,
            code=code,
            version=(latest or 0) + 1,
            fingerprint=fingerprint,
            document=document,
            created_at=now,
            current=True,
        )
        .returning(plan_versions.c.id)
    ).scalar_one()


def retire_plans(conn: Connection, catalog: str, keep: set[str]) -> None:
    """Plans removed from a catalog file are no longer offered (subscribers keep theirs)."""
    conn.execute(
        update(plan_versions)
        .where(plan_versions.c.catalog == catalog, plan_versions.c.code.not_in(keep) if keep else true())
        .values(current=False)
    )


def current_plans(conn: Connection, catalog: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(plan_versions)
        .where(plan_versions.c.catalog == catalog, plan_versions.c.current.is_(True))
        .order_by(plan_versions.c.id)
    ).mappings()
    return [dict(r) for r in rows]
