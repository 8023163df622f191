"""Tenants, members and API keys."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from farebox.storage.tables.core import api_keys, members, tenants


def insert_tenant(conn: Connection, **values: Any) -> None:
    conn.execute(insert(tenants).values(**values))


def get_tenant(conn: Connection, tenant_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
    query = select(tenants).where(tenants.c.id == tenant_id)
    row = conn.execute(query.with_for_update() if for_update else query).mappings().first()
    return dict(row) if row else None


def bank_transfer_tenants(conn: Connection, tenant_ids: Iterable[str]) -> set[str]:
    """Those of these tenants invoiced by bank transfer (payment terms set): never charged."""
    ids = sorted(set(tenant_ids))
    if not ids:
        return set()
    query = select(tenants.c.id).where(tenants.c.id.in_(ids), tenants.c.payment_terms_days.is_not(None))
    return {row.id for row in conn.execute(query)}


def list_tenants(
    conn: Connection, *, search: str | None = None, limit: int = 100, after: str | None = None
) -> list[dict[str, Any]]:
    query = select(tenants).order_by(tenants.c.id).limit(limit)
    if search:
        pattern = f"%{search.lower()}%"
        query = query.where(tenants.c.id.ilike(pattern) | tenants.c.name.ilike(pattern))
    if after:
        query = query.where(tenants.c.id > after)
    return [dict(r) for r in conn.execute(query).mappings()]


def update_tenant(conn: Connection, tenant_id: str, **values: Any) -> None:
    conn.execute(update(tenants).where(tenants.c.id == tenant_id).values(**values))


def insert_member(conn: Connection, **values: Any) -> None:
    conn.execute(insert(members).values(**values))


def get_member_by_email(conn: Connection, tenant_id: str, email: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(members).where(members.c.tenant_id == tenant_id, members.c.email == email)
    ).mappings().first()
    return dict(row) if row else None


def get_member_by_email_ci(conn: Connection, tenant_id: str, email: str) -> dict[str, Any] | None:
    """The member with this e-mail as typed, else lower-cased (addresses are stored as entered); one query."""
    query = select(members).where(members.c.tenant_id == tenant_id, members.c.email.in_({email, email.lower()}))
    rows = [dict(r) for r in conn.execute(query).mappings()]
    return next((r for r in rows if r["email"] == email), rows[0] if rows else None)


def list_members(conn: Connection, tenant_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(members).where(members.c.tenant_id == tenant_id).order_by(members.c.created_at, members.c.id)
    )
    return [dict(r) for r in rows.mappings()]


def insert_api_key(conn: Connection, **values: Any) -> None:
    conn.execute(insert(api_keys).values(**values))


def get_api_key(conn: Connection, key_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).mappings().first()
    return dict(row) if row else None


def revoke_api_key(conn: Connection, key_id: str, now: datetime) -> None:
    conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=now))


def update_api_key(conn: Connection, key_id: str, **values: Any) -> None:
    conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(**values))


def list_api_keys(conn: Connection, tenant_id: str | None) -> list[dict[str, Any]]:
    query = select(api_keys).where(
        api_keys.c.tenant_id.is_(None) if tenant_id is None else api_keys.c.tenant_id == tenant_id
    )
    return [dict(r) for r in conn.execute(query.order_by(api_keys.c.created_at)).mappings()]
