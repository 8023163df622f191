"""Reading every row a tenant owns, table by table (for `farebox export`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Table, select

from farebox.storage.tables import metadata

# Tables that hold credentials or cached answers, not the tenant's records.
NOT_EXPORTED = frozenset({"api_keys", "portal_sessions", "portal_sign_in_links", "idempotency_keys"})
# Columns never exported, whatever the table: secrets and their hashes.
SECRET_MARKERS = ("secret", "hash", "token", "password")


def tenant_tables() -> list[Table]:
    """Every table with a tenant_id column, in dependency order, except credentials."""
    return [t for t in metadata.sorted_tables if "tenant_id" in t.c and t.name not in NOT_EXPORTED]


def exported_columns(table: Table) -> list[str]:
    return [c.name for c in table.columns if not any(m in c.name for m in SECRET_MARKERS)]


def count(conn: Connection, table: Table, tenant_id: str) -> int:
    from sqlalchemy import func

    return conn.execute(select(func.count()).select_from(table).where(table.c.tenant_id == tenant_id)).scalar_one()


def rows(conn: Connection, table: Table, tenant_id: str, *, batch: int = 5000) -> Iterator[dict[str, Any]]:
    columns = [table.c[name] for name in exported_columns(table)]
    order = list(table.primary_key.columns) or columns
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(
        select(*columns).where(table.c.tenant_id == tenant_id).order_by(*order)
    )
    for row in result.mappings():
        yield dict(row)
