"""Payment customers, methods and attempts (with batch forms for the billing run)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from farebox.storage.tables.payments import payment_attempts, payment_customers, payment_methods, provider_events


def customer_ref(conn: Connection, tenant_id: str, provider: str) -> str | None:
    return customer_refs(conn, [tenant_id], provider).get(tenant_id)


def customer_refs(conn: Connection, tenant_ids: Iterable[str], provider: str) -> dict[str, str]:
    """The provider's customer of each of these tenants that has one."""
    ids = sorted(set(tenant_ids))
    if not ids:
        return {}
    query = select(payment_customers.c.tenant_id, payment_customers.c.customer_ref).where(
        payment_customers.c.tenant_id.in_(ids), payment_customers.c.provider == provider
    )
    return {row.tenant_id: row.customer_ref for row in conn.execute(query)}


def insert_customer(conn: Connection, **values: Any) -> None:
    insert_customers(conn, [values])


def insert_customers(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(payment_customers), list(rows))


def insert_customers_if_missing(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert customers; one another process stored first for the same tenant and provider wins."""
    if rows:
        dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        conn.execute(
            dialect_insert(payment_customers).on_conflict_do_nothing(index_elements=["tenant_id", "provider"]),
            list(rows),
        )


def insert_method(conn: Connection, **values: Any) -> None:
    if values.get("is_default"):
        conn.execute(
            update(payment_methods).where(payment_methods.c.tenant_id == values["tenant_id"]).values(is_default=False)
        )
    conn.execute(insert(payment_methods).values(**values))


def methods(conn: Connection, tenant_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(payment_methods)
        .where(payment_methods.c.tenant_id == tenant_id, payment_methods.c.removed_at.is_(None))
        .order_by(payment_methods.c.created_at, payment_methods.c.id)
    ).mappings()
    return [dict(r) for r in rows]


def default_method(conn: Connection, tenant_id: str) -> dict[str, Any] | None:
    return default_methods(conn, [tenant_id]).get(tenant_id)


def default_methods(conn: Connection, tenant_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Each tenant's default payment method: its latest method marked default and not removed."""
    ids = sorted(set(tenant_ids))
    if not ids:
        return {}
    rows = conn.execute(
        select(payment_methods)
        .where(
            payment_methods.c.tenant_id.in_(ids),
            payment_methods.c.removed_at.is_(None),
            payment_methods.c.is_default.is_(True),
        )
        .order_by(payment_methods.c.tenant_id, payment_methods.c.created_at, payment_methods.c.id)
    ).mappings()
    return {row["tenant_id"]: dict(row) for row in rows}  # the latest of each tenant wins


def method_by_id(conn: Connection, tenant_id: str, method_id: str) -> dict[str, Any] | None:
    row = (
        conn.execute(
            select(payment_methods).where(payment_methods.c.tenant_id == tenant_id, payment_methods.c.id == method_id)
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def attempt_by_id(
    conn: Connection, tenant_id: str, attempt_id: str, *, for_update: bool = False
) -> dict[str, Any] | None:
    query = select(payment_attempts).where(
        payment_attempts.c.tenant_id == tenant_id, payment_attempts.c.id == attempt_id
    )
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    return dict(row) if row else None


def attempt_by_key(conn: Connection, tenant_id: str, idempotency_key: str) -> dict[str, Any] | None:
    row = (
        conn.execute(
            select(payment_attempts).where(
                payment_attempts.c.tenant_id == tenant_id, payment_attempts.c.idempotency_key == idempotency_key
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def attempt_by_ref(conn: Connection, provider: str, provider_ref: str) -> dict[str, Any] | None:
    row = (
        conn.execute(
            select(payment_attempts).where(
                payment_attempts.c.provider == provider, payment_attempts.c.provider_ref == provider_ref
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def insert_attempt(conn: Connection, **values: Any) -> bool:
    return insert_attempts(conn, [values]) == 1


def insert_attempts(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert attempts unless their idempotency key exists; how many were inserted."""
    if not rows:
        return 0
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = (
        dialect_insert(payment_attempts)
        .on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"])
        .returning(payment_attempts.c.id)
    )
    return len(conn.execute(statement, list(rows)).all())


def update_attempt(conn: Connection, tenant_id: str, attempt_id: str, **values: Any) -> None:
    conn.execute(
        update(payment_attempts)
        .where(payment_attempts.c.tenant_id == tenant_id, payment_attempts.c.id == attempt_id)
        .values(**values)
    )


def attempts(conn: Connection, tenant_id: str, invoice_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(payment_attempts)
        .where(payment_attempts.c.tenant_id == tenant_id, payment_attempts.c.invoice_id == invoice_id)
        .order_by(payment_attempts.c.attempt)
    ).mappings()
    return [dict(r) for r in rows]


def attempt_counts(conn: Connection, invoices: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """How many attempts each `(tenant_id, invoice_id)` has had (0 included)."""
    counts = dict.fromkeys(invoices, 0)
    if invoices:  # by tenant, then the pairs kept (see invoicing/db/invoices.py on row-value IN)
        query = (
            select(payment_attempts.c.tenant_id, payment_attempts.c.invoice_id, func.count())
            .where(payment_attempts.c.tenant_id.in_(sorted({t for t, _ in invoices})))
            .group_by(payment_attempts.c.tenant_id, payment_attempts.c.invoice_id)
        )
        counts.update({(t, i): n for t, i, n in conn.execute(query) if (t, i) in counts})
    return counts


def tenant_for_customer(conn: Connection, provider: str, customer_ref: str) -> str | None:
    return conn.execute(
        select(payment_customers.c.tenant_id).where(
            payment_customers.c.provider == provider, payment_customers.c.customer_ref == customer_ref
        )
    ).scalar()


def method_by_ref(conn: Connection, tenant_id: str, provider_ref: str) -> dict[str, Any] | None:
    row = (
        conn.execute(
            select(payment_methods).where(
                payment_methods.c.tenant_id == tenant_id, payment_methods.c.provider_ref == provider_ref
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def provider_event(conn: Connection, provider: str, event_id: str) -> dict[str, Any] | None:
    """A provider webhook event already handled, with the outcome it was answered."""
    row = conn.execute(
        select(provider_events).where(provider_events.c.provider == provider, provider_events.c.event_id == event_id)
    ).mappings().first()
    return dict(row) if row else None


def insert_provider_event(conn: Connection, **values: Any) -> None:
    conn.execute(insert(provider_events).values(**values))
