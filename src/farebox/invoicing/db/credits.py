"""The customer credit balance, its entries and its refunds."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from farebox.storage.tables.invoicing import credit_balances, credit_entries, credit_refunds
from farebox.storage.tables.payments import payment_attempts

Account = tuple[str, str]  # (tenant_id, currency)


def lock_balances(conn: Connection, accounts: Iterable[Account]) -> dict[Account, int]:
    """The balances of these accounts, locked until the transaction ends (a missing row is zero and
    is created by `change_balances`: two writers adding to it at once both add)."""
    wanted = set(accounts)
    if not wanted:
        return {}
    tenant_ids = sorted({tenant_id for tenant_id, _ in wanted})
    query = select(credit_balances).where(credit_balances.c.tenant_id.in_(tenant_ids)).with_for_update()
    found = {(r.tenant_id, r.currency): int(r.balance_minor) for r in conn.execute(query)}
    return {account: found.get(account, 0) for account in wanted}


def add_entries(conn: Connection, entries: Sequence[dict[str, Any]]) -> None:
    """Write ledger entries and move the balances by their amounts, in two statements."""
    if not entries:
        return
    conn.execute(insert(credit_entries), list(entries))
    deltas: dict[Account, int] = {}
    for entry in entries:
        account = (entry["tenant_id"], entry["currency"])
        deltas[account] = deltas.get(account, 0) + int(entry["amount_minor"])
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = dialect_insert(credit_balances)
    statement = statement.on_conflict_do_update(
        index_elements=["tenant_id", "currency"],
        set_={"balance_minor": credit_balances.c.balance_minor + statement.excluded.balance_minor},
    )
    moves = [{"tenant_id": t, "currency": c, "balance_minor": d} for (t, c), d in sorted(deltas.items()) if d]
    conn.execute(statement, moves)


def balances(conn: Connection, tenant_id: str) -> dict[str, int]:
    b = credit_balances.c
    query = select(b.currency, b.balance_minor).where(b.tenant_id == tenant_id)
    return {currency: int(balance) for currency, balance in conn.execute(query)}


def entry_sums(conn: Connection, tenant_id: str) -> dict[str, int]:
    """The balance of each currency re-derived from the entries (G3)."""
    query = (
        select(credit_entries.c.currency, func.sum(credit_entries.c.amount_minor))
        .where(credit_entries.c.tenant_id == tenant_id)
        .group_by(credit_entries.c.currency)
    )
    return {currency: int(total) for currency, total in conn.execute(query)}


def entries(conn: Connection, tenant_id: str, *, limit: int = 100) -> list[dict[str, Any]]:
    query = (
        select(credit_entries)
        .where(credit_entries.c.tenant_id == tenant_id)
        .order_by(credit_entries.c.created_at.desc(), credit_entries.c.id.desc())
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(query).mappings()]


def refundable_charges(conn: Connection, tenant_id: str, currency: str, provider: str) -> list[dict[str, Any]]:
    """The tenant's succeeded charges in this currency with the provider, newest first, each with
    what is left to refund (`refundable_minor`: its amount less its refunds that did not fail)."""
    a, r = payment_attempts.c, credit_refunds.c
    refunded = (
        select(func.coalesce(func.sum(r.amount_minor), 0))
        .where(r.tenant_id == a.tenant_id, r.payment_attempt_id == a.id, r.status != "failed")
        .scalar_subquery()
    )
    query = (
        select(a.id, a.provider_ref, a.amount_minor, (a.amount_minor - refunded).label("refundable_minor"))
        .where(a.tenant_id == tenant_id, a.currency == currency, a.provider == provider, a.status == "succeeded",
               a.provider_ref.is_not(None), a.amount_minor > 0)
        .order_by(a.created_at.desc(), a.id.desc())
    )
    return [dict(row) for row in conn.execute(query).mappings() if int(row["refundable_minor"]) > 0]


def insert_refunds(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(credit_refunds), list(rows))


def pending_refunds(conn: Connection, tenant_id: str, *, for_update: bool = False) -> list[dict[str, Any]]:
    query = select(credit_refunds).where(credit_refunds.c.tenant_id == tenant_id, credit_refunds.c.status == "pending")
    if for_update:
        query = query.with_for_update()
    return [dict(r) for r in conn.execute(query.order_by(credit_refunds.c.created_at, credit_refunds.c.id)).mappings()]


def refunds(conn: Connection, tenant_id: str, ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
    query = select(credit_refunds).where(credit_refunds.c.tenant_id == tenant_id)
    if ids is not None:
        query = query.where(credit_refunds.c.id.in_(list(ids)))
    return [dict(r) for r in conn.execute(query.order_by(credit_refunds.c.created_at, credit_refunds.c.id)).mappings()]


def settle_refund(conn: Connection, tenant_id: str, refund_id: str, **values: Any) -> bool:
    """Record a refund's outcome if it is still pending; True if this call settled it."""
    statement = (
        update(credit_refunds)
        .where(and_(credit_refunds.c.tenant_id == tenant_id, credit_refunds.c.id == refund_id,
                    credit_refunds.c.status == "pending"))
        .values(**values)
        .returning(credit_refunds.c.id)
    )
    return conn.execute(statement).first() is not None


def has_entry(conn: Connection, tenant_id: str, document_id: str, kind: str) -> bool:
    e = credit_entries.c
    query = select(e.id).where(e.tenant_id == tenant_id, e.document_id == document_id, e.kind == kind)
    return conn.execute(query.limit(1)).first() is not None
