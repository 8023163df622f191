"""Payment customers, methods and attempts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from farebox.adapters.db.tables.payments import payment_attempts, payment_customers, payment_methods


def customer_ref(conn: Connection, tenant_id: str, provider: str) -> str | None:
    return conn.execute(
        select(payment_customers.c.customer_ref).where(payment_customers.c.tenant_id == tenant_id, payment_customers.c.provider == provider)
    ).scalar()


def insert_customer(conn: Connection, **values: Any) -> None:
    conn.execute(insert(payment_customers).values(**values))


def insert_method(conn: Connection, **values: Any) -> None:
    if values.get("is_default"):
        conn.execute(update(payment_methods).where(payment_methods.c.tenant_id == values["tenant_id"]).values(is_default=False))
    conn.execute(insert(payment_methods).values(**values))


def methods(conn: Connection, tenant_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(payment_methods)
        .where(payment_methods.c.tenant_id == tenant_id, payment_methods.c.removed_at.is_(None))
        .order_by(payment_methods.c.created_at, payment_methods.c.id)
    ).mappings()
    return [dict(r) for r in rows]


def default_method(conn: Connection, tenant_id: str) -> dict[str, Any] | None:
    for method in reversed(methods(conn, tenant_id)):
        if method["is_default"]:
            return method
    return None


def attempt_by_key(conn: Connection, tenant_id: str, idempotency_key: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(payment_attempts).where(payment_attempts.c.tenant_id == tenant_id, payment_attempts.c.idempotency_key == idempotency_key)
    ).mappings().first()
    return dict(row) if row else None


def attempt_by_ref(conn: Connection, provider: str, provider_ref: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(payment_attempts).where(payment_attempts.c.provider == provider, payment_attempts.c.provider_ref == provider_ref)
    ).mappings().first()
    return dict(row) if row else None


def insert_attempt(conn: Connection, **values: Any) -> bool:
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    inserted = conn.execute(
        dialect_insert(payment_attempts).values(**values).on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"]).returning(payment_attempts.c.id)
    ).first()
    return inserted is not None


def update_attempt(conn: Connection, tenant_id: str, attempt_id: str, **values: Any) -> None:
    conn.execute(update(payment_attempts).where(payment_attempts.c.tenant_id == tenant_id, payment_attempts.c.id == attempt_id).values(**values))


def attempts(conn: Connection, tenant_id: str, invoice_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(payment_attempts)
        .where(payment_attempts.c.tenant_id == tenant_id, payment_attempts.c.invoice_id == invoice_id)
        .order_by(payment_attempts.c.attempt)
    ).mappings()
    return [dict(r) for r in rows]


def attempt_count(conn: Connection, tenant_id: str, invoice_id: str) -> int:
    return conn.execute(
        select(func.count()).select_from(payment_attempts).where(payment_attempts.c.tenant_id == tenant_id, payment_attempts.c.invoice_id == invoice_id)
    ).scalar_one()




def tenant_for_customer(conn: Connection, provider: str, customer_ref: str) -> str | None:
    return conn.execute(
        select(payment_customers.c.tenant_id).where(payment_customers.c.provider == provider, payment_customers.c.customer_ref == customer_ref)
    ).scalar()


def method_by_ref(conn: Connection, tenant_id: str, provider_ref: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(payment_methods).where(payment_methods.c.tenant_id == tenant_id, payment_methods.c.provider_ref == provider_ref)
    ).mappings().first()
    return dict(row) if row else None
