"""Invoices, their lines and the gapless number sequences."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, exists, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from farebox.adapters.db.tables.invoicing import invoice_lines, invoice_sequences, invoices
from farebox.adapters.db.tables.subscriptions import subscriptions


def billed_by_key(conn: Connection, tenant_id: str, subscription_ids: Iterable[str], period_start: datetime | None = None) -> dict[str, int]:
    """Sum billed so far under each line key, for these subscriptions (voided invoices excluded)."""
    query = (
        select(invoice_lines.c.key, func.sum(invoice_lines.c.amount_minor))
        .join(invoices, and_(invoices.c.tenant_id == invoice_lines.c.tenant_id, invoices.c.id == invoice_lines.c.invoice_id))
        .where(
            invoice_lines.c.tenant_id == tenant_id,
            invoice_lines.c.subscription_id.in_(list(subscription_ids)),
            invoices.c.status != "void",
        )
        .group_by(invoice_lines.c.key)
    )
    if period_start is not None:
        query = query.where(invoice_lines.c.period_start_at == period_start)
    return {key: int(total) for key, total in conn.execute(query)}


def fee_lines(conn: Connection, tenant_id: str, subscription_id: str, period_start: datetime) -> list[dict[str, Any]]:
    """Fee-like lines (fees, prorated charges and credits) of one subscription's period, oldest first."""
    rows = conn.execute(
        select(invoice_lines)
        .join(invoices, and_(invoices.c.tenant_id == invoice_lines.c.tenant_id, invoices.c.id == invoice_lines.c.invoice_id))
        .where(
            invoice_lines.c.tenant_id == tenant_id,
            invoice_lines.c.subscription_id == subscription_id,
            invoice_lines.c.period_start_at == period_start,
            invoice_lines.c.kind != "overage",
            invoices.c.status != "void",
        )
        .order_by(invoices.c.issued_at, invoice_lines.c.position)
    ).mappings()
    return [dict(r) for r in rows]


def invoice_exists(conn: Connection, tenant_id: str, billing_key: str) -> bool:
    return conn.execute(
        select(invoices.c.id).where(invoices.c.tenant_id == tenant_id, invoices.c.billing_key == billing_key)
    ).first() is not None


def insert_invoice(conn: Connection, *, lines: Sequence[dict[str, Any]], **values: Any) -> bool:
    """Insert an invoice and its lines unless its billing key exists; True if inserted."""
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    inserted = conn.execute(
        dialect_insert(invoices).values(**values).on_conflict_do_nothing(index_elements=["tenant_id", "billing_key"]).returning(invoices.c.id)
    ).first()
    if inserted is None:  # (rowcount is not reliable here on psycopg)
        return False
    if lines:
        conn.execute(insert(invoice_lines), [{"tenant_id": values["tenant_id"], "invoice_id": values["id"], "position": i, **line} for i, line in enumerate(lines, 1)])
    return True


def next_number(conn: Connection, scope: str, year: int) -> int:
    """The next number of an issuer's year, taken inside the caller's transaction (no gaps:
    a rollback gives the number back; the row lock serialises concurrent issuers)."""
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(dialect_insert(invoice_sequences).values(scope=scope, year=year, last_number=0).on_conflict_do_nothing(index_elements=["scope", "year"]))
    return conn.execute(
        update(invoice_sequences)
        .where(invoice_sequences.c.scope == scope, invoice_sequences.c.year == year)
        .values(last_number=invoice_sequences.c.last_number + 1)
        .returning(invoice_sequences.c.last_number)
    ).scalar_one()


def get(conn: Connection, tenant_id: str, invoice_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
    query = select(invoices).where(invoices.c.tenant_id == tenant_id, invoices.c.id == invoice_id)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    return dict(row) if row else None


def lines(conn: Connection, tenant_id: str, invoice_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(invoice_lines).where(invoice_lines.c.tenant_id == tenant_id, invoice_lines.c.invoice_id == invoice_id).order_by(invoice_lines.c.position)
    ).mappings()
    return [dict(r) for r in rows]


def list_for_tenant(conn: Connection, tenant_id: str, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    query = select(invoices).where(invoices.c.tenant_id == tenant_id)
    if status:
        query = query.where(invoices.c.status == status)
    rows = conn.execute(query.order_by(invoices.c.issued_at.desc(), invoices.c.number.desc()).limit(limit)).mappings()
    return [dict(r) for r in rows]


def update_invoice(conn: Connection, tenant_id: str, invoice_id: str, **values: Any) -> None:
    conn.execute(update(invoices).where(invoices.c.tenant_id == tenant_id, invoices.c.id == invoice_id).values(**values))


def _to_bill(statuses: Sequence[str], plan_version_ids: Sequence[int]) -> Any:
    billed = exists().where(
        invoice_lines.c.tenant_id == subscriptions.c.tenant_id,
        invoice_lines.c.subscription_id == subscriptions.c.id,
        invoice_lines.c.period_start_at == subscriptions.c.period_start_at,
        invoice_lines.c.kind.in_(("fee", "proration_charge")),
    )
    return and_(subscriptions.c.status.in_(list(statuses)), subscriptions.c.plan_version_id.in_(list(plan_version_ids)), ~billed)


def subscriptions_to_bill(conn: Connection, *, statuses: Sequence[str], plan_version_ids: Sequence[int], after: tuple[str, str] | None, limit: int) -> list[dict[str, Any]]:
    """Live subscriptions on paid plans whose current period has no fee line yet (keyset-paged)."""
    query = select(subscriptions).where(_to_bill(statuses, plan_version_ids))
    if after is not None:
        query = query.where((subscriptions.c.tenant_id > after[0]) | and_(subscriptions.c.tenant_id == after[0], subscriptions.c.id > after[1]))
    rows = conn.execute(query.order_by(subscriptions.c.tenant_id, subscriptions.c.id).limit(limit)).mappings()
    return [dict(r) for r in rows]


def count_invoices(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(invoices)).scalar_one()


def count_subscriptions_to_bill(conn: Connection, *, statuses: Sequence[str], plan_version_ids: Sequence[int]) -> int:
    return conn.execute(select(func.count()).select_from(subscriptions).where(_to_bill(statuses, plan_version_ids))).scalar_one()
