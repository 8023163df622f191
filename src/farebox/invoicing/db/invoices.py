"""Invoices, their lines and the gapless number sequences.

Most queries come twice: for one subscription or invoice (signals, the API)
and for a batch of them (the billing run), keyed by `(tenant_id, id)` pairs;
a batch form is one statement however long the batch.  It selects by
`tenant_id IN (...)` (the leading column of every index here) and keeps the
pairs asked for in Python: a row-value `(tenant_id, id) IN (...)` makes
SQLite scan the table, and `tenant_id IN (...) AND id IN (...)` probes every
combination of the two lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from farebox.storage.tables.core import tenants, test_clocks
from farebox.storage.tables.invoicing import invoice_lines, invoice_sequences, invoices
from farebox.storage.tables.payments import payment_attempts
from farebox.storage.tables.subscriptions import subscriptions


def billed_by_key(
    conn: Connection, tenant_id: str, subscription_ids: Iterable[str], period_start: datetime | None = None
) -> dict[str, int]:
    """Sum billed so far under each line key, for these subscriptions (voided invoices excluded)."""
    query = (
        select(invoice_lines.c.key, func.sum(invoice_lines.c.amount_minor))
        .join(
            invoices,
            and_(invoices.c.tenant_id == invoice_lines.c.tenant_id, invoices.c.id == invoice_lines.c.invoice_id),
        )
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


Pair = tuple[str, str]  # (tenant_id, subscription or invoice id)


def billed_by_subscription(conn: Connection, pairs: Sequence[Pair]) -> dict[Pair, dict[str, int]]:
    """`billed_by_key` of each of these subscriptions on its own, in one query."""
    billed: dict[Pair, dict[str, int]] = {pair: {} for pair in pairs}
    if not pairs:
        return billed
    query = (
        select(
            invoice_lines.c.tenant_id,
            invoice_lines.c.subscription_id,
            invoice_lines.c.key,
            func.sum(invoice_lines.c.amount_minor),
        )
        .join(
            invoices,
            and_(invoices.c.tenant_id == invoice_lines.c.tenant_id, invoices.c.id == invoice_lines.c.invoice_id),
        )
        .where(invoice_lines.c.tenant_id.in_(_tenants(pairs)), invoices.c.status != "void")
        .group_by(invoice_lines.c.tenant_id, invoice_lines.c.subscription_id, invoice_lines.c.key)
    )
    for tenant_id, subscription_id, key, total in conn.execute(query):
        if (tenant_id, subscription_id) in billed:
            billed[(tenant_id, subscription_id)][key] = int(total)
    return billed


def _tenants(pairs: Iterable[Pair]) -> list[str]:
    return sorted({tenant_id for tenant_id, _ in pairs})


def fee_lines(conn: Connection, tenant_id: str, subscription_id: str, period_start: datetime) -> list[dict[str, Any]]:
    """Fee-like lines (fees, prorated charges and credits) of one subscription's period, oldest first."""
    rows = conn.execute(
        select(invoice_lines)
        .join(
            invoices,
            and_(invoices.c.tenant_id == invoice_lines.c.tenant_id, invoices.c.id == invoice_lines.c.invoice_id),
        )
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


def existing_billing_keys(conn: Connection, keys: Sequence[Pair]) -> set[Pair]:
    """Which of these `(tenant_id, billing_key)` pairs already have an invoice."""
    if not keys:
        return set()
    wanted = set(keys)
    query = select(invoices.c.tenant_id, invoices.c.billing_key).where(invoices.c.tenant_id.in_(_tenants(wanted)))
    return {(row.tenant_id, row.billing_key) for row in conn.execute(query)} & wanted


def insert_invoice(conn: Connection, *, lines: Sequence[dict[str, Any]], **values: Any) -> bool:
    """Insert an invoice and its lines unless its billing key exists; True if inserted."""
    return insert_invoices(conn, [values], {values["id"]: lines}) == 1


def insert_invoices(
    conn: Connection, rows: Sequence[dict[str, Any]], lines: Mapping[str, Sequence[dict[str, Any]]]
) -> int:
    """Insert invoices (`lines` by invoice id) unless their billing key exists; how many were inserted.

    Only the inserted invoices get their lines; a caller that gets fewer than
    `len(rows)` must roll back, as the numbers it gave the others are taken.
    """
    if not rows:
        return 0
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = (
        dialect_insert(invoices)
        .on_conflict_do_nothing(index_elements=["tenant_id", "billing_key"])
        .returning(invoices.c.tenant_id, invoices.c.id)
    )
    # (rowcount is not reliable for ON CONFLICT on psycopg: count what came back)
    inserted = {(row.tenant_id, row.id) for row in conn.execute(statement, list(rows))}
    line_rows = [
        {"tenant_id": row["tenant_id"], "invoice_id": row["id"], "position": i, **line}
        for row in rows if (row["tenant_id"], row["id"]) in inserted
        for i, line in enumerate(lines.get(row["id"], ()), 1)
    ]
    if line_rows:
        conn.execute(insert(invoice_lines), line_rows)
    return len(inserted)


def next_number(conn: Connection, scope: str, year: int) -> int:
    """The next number of an issuer's year, taken inside the caller's transaction (no gaps:
    a rollback gives the number back; the row lock serialises concurrent issuers)."""
    return reserve_numbers(conn, scope, year, 1)


def reserve_numbers(conn: Connection, scope: str, year: int, count: int) -> int:
    """Take the next `count` numbers of an issuer's year with one `UPDATE … RETURNING`;
    returns the first (the block is first .. first + count - 1, no gaps, as `next_number`)."""
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        dialect_insert(invoice_sequences)
        .values(scope=scope, year=year, last_number=0)
        .on_conflict_do_nothing(index_elements=["scope", "year"])
    )
    last = conn.execute(
        update(invoice_sequences)
        .where(invoice_sequences.c.scope == scope, invoice_sequences.c.year == year)
        .values(last_number=invoice_sequences.c.last_number + count)
        .returning(invoice_sequences.c.last_number)
    ).scalar_one()
    return int(last) - count + 1


def get(conn: Connection, tenant_id: str, invoice_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
    query = select(invoices).where(invoices.c.tenant_id == tenant_id, invoices.c.id == invoice_id)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    return dict(row) if row else None


def open_among(conn: Connection, pairs: Sequence[Pair]) -> dict[Pair, dict[str, Any]]:
    """Those of these invoices that are open, by `(tenant_id, id)`, with what charging them
    reads (`tenant_id`, `id`, `billing_key`, `number`, `subscription_id`, `kind`, `total_minor`,
    `amount_due_minor`, `currency`)."""
    if not pairs:
        return {}
    wanted = set(pairs)
    c = invoices.c
    query = select(
        c.tenant_id,
        c.id,
        c.billing_key,
        c.number,
        c.subscription_id,
        c.kind,
        c.status,
        c.total_minor,
        c.amount_due_minor,
        c.currency,
    ).where(c.tenant_id.in_(_tenants(wanted)), c.status == "open")
    return {(r.tenant_id, r.id): r._asdict() for r in conn.execute(query) if (r.tenant_id, r.id) in wanted}


def mark_paid(conn: Connection, paid: Sequence[tuple[str, str, datetime]]) -> None:
    """Set `(tenant_id, invoice_id, paid_at)` invoices paid: one statement, executed for all."""
    if paid:
        statement = (
            update(invoices)
            .where(invoices.c.tenant_id == bindparam("t"), invoices.c.id == bindparam("i"))
            .values(status="paid", paid_at=bindparam("at"))
        )
        conn.execute(statement, [{"t": t, "i": i, "at": at} for t, i, at in paid])


def lines(conn: Connection, tenant_id: str, invoice_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(invoice_lines)
        .where(invoice_lines.c.tenant_id == tenant_id, invoice_lines.c.invoice_id == invoice_id)
        .order_by(invoice_lines.c.position)
    ).mappings()
    return [dict(r) for r in rows]


def list_for_tenant(
    conn: Connection, tenant_id: str, *, status: str | None = None, document: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The tenant's invoices and credit notes (or only one `document` kind), newest first."""
    query = select(invoices).where(invoices.c.tenant_id == tenant_id)
    if document:
        query = query.where(invoices.c.document == document)
    if status:
        query = query.where(invoices.c.status == status)
    rows = conn.execute(query.order_by(invoices.c.issued_at.desc(), invoices.c.number.desc()).limit(limit)).mappings()
    return [dict(r) for r in rows]


def update_invoice(conn: Connection, tenant_id: str, invoice_id: str, **values: Any) -> None:
    conn.execute(
        update(invoices).where(invoices.c.tenant_id == tenant_id, invoices.c.id == invoice_id).values(**values)
    )


def _to_bill(statuses: Sequence[str], plan_version_ids: Sequence[int]) -> Any:
    billed = exists().where(
        invoice_lines.c.tenant_id == subscriptions.c.tenant_id,
        invoice_lines.c.subscription_id == subscriptions.c.id,
        invoice_lines.c.period_start_at == subscriptions.c.period_start_at,
        invoice_lines.c.kind.in_(("fee", "proration_charge")),
    )
    return and_(
        subscriptions.c.status.in_(list(statuses)), subscriptions.c.plan_version_id.in_(list(plan_version_ids)), ~billed
    )


def subscriptions_to_bill(
    conn: Connection,
    *,
    statuses: Sequence[str],
    plan_version_ids: Sequence[int],
    after: tuple[str, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Live subscriptions on paid plans whose current period has no fee line yet (keyset-paged)."""
    query = select(subscriptions).where(_to_bill(statuses, plan_version_ids))
    if after is not None:
        query = query.where(
            (subscriptions.c.tenant_id > after[0])
            | and_(subscriptions.c.tenant_id == after[0], subscriptions.c.id > after[1])
        )
    rows = conn.execute(query.order_by(subscriptions.c.tenant_id, subscriptions.c.id).limit(limit)).mappings()
    return [dict(r) for r in rows]


def billing_parties(conn: Connection, tenant_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """What an invoice shows of each of these tenants (`name`, `billing_email`, `tax_rate_bp`,
    `tax_id`, and `test_clock_id` for its number series, as in `tenants_repo.get_tenant`), in one query."""
    ids = sorted(set(tenant_ids))
    if not ids:
        return {}
    t = tenants.c
    query = select(t.id, t.name, t.billing_email, t.tax_rate_bp, t.tax_id, t.test_clock_id).where(t.id.in_(ids))
    return {row.id: row._asdict() for row in conn.execute(query)}


def clock_times(conn: Connection, tenant_ids: Iterable[str]) -> dict[str, datetime | None]:
    """Each of these tenants' test clock time (None on the real clock), in one query;
    a tenant that does not exist is left out (`clocks.now_for` of many)."""
    ids = sorted(set(tenant_ids))
    if not ids:
        return {}
    query = (
        select(tenants.c.id, test_clocks.c.now_at)
        .select_from(tenants.outerjoin(test_clocks, tenants.c.test_clock_id == test_clocks.c.id))
        .where(tenants.c.id.in_(ids))
    )
    return {row.id: row.now_at for row in conn.execute(query)}


def count_invoices(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(invoices)).scalar_one()


def count_subscriptions_to_bill(conn: Connection, *, statuses: Sequence[str], plan_version_ids: Sequence[int]) -> int:
    return conn.execute(
        select(func.count()).select_from(subscriptions).where(_to_bill(statuses, plan_version_ids))
    ).scalar_one()


def never_charged(conn: Connection, limit: int) -> list[Pair]:
    """Open invoices without a single payment attempt: issued by a billing run whose charging
    transaction did not commit (every charge, even without a card, leaves an attempt)."""
    a = payment_attempts.c
    attempted = exists().where(a.tenant_id == invoices.c.tenant_id, a.invoice_id == invoices.c.id)
    query = (
        select(invoices.c.tenant_id, invoices.c.id)
        .where(invoices.c.status == "open", ~attempted)
        .order_by(invoices.c.tenant_id, invoices.c.id)
        .limit(limit)
    )
    return [(r.tenant_id, r.id) for r in conn.execute(query)]
