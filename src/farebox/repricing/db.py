"""Reads for repricing (docs/repricing.md): set-based, one statement per table for a batch of tenants.

Each function takes the batch's tenant ids and returns every row the replay
needs for all of them at once (never one query per tenant or per period),
ordered by tenant so the service can group them in one pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, func, select

from farebox.storage.tables.core import catalogs, plan_versions, tenants, test_clocks
from farebox.storage.tables.invoicing import invoice_lines, invoices
from farebox.storage.tables.metering import occurrences, usage_records
from farebox.storage.tables.subscriptions import subscriptions

NOT_SUBSCRIBED = ("upcoming", "schedule_canceled")  # rows that never were the tenant's subscription


def stored_catalog(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(catalogs.c.document).where(catalogs.c.name == name)).first()
    return dict(row.document) if row else None


def count_tenants(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(tenants)).scalar_one())


def tenant_batch(conn: Connection, *, after: str | None, limit: int) -> list[dict[str, Any]]:
    """Tenants in id order after `after`, with their test clock's time (None: the real clock)."""
    query = select(tenants.c.id, test_clocks.c.now_at).select_from(
        tenants.outerjoin(test_clocks, test_clocks.c.id == tenants.c.test_clock_id)
    )
    if after is not None:
        query = query.where(tenants.c.id > after)
    return [dict(r) for r in conn.execute(query.order_by(tenants.c.id).limit(limit)).mappings()]


def subscriptions_of(conn: Connection, tenant_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Every subscription the tenants had, with its plan version's catalog and code, oldest first."""
    s, v = subscriptions.c, plan_versions.c
    query = (
        select(
            s.tenant_id, s.id, s.status, s.starts_at, s.ended_at, s.trial_ends_at, s.plan_version_id, v.catalog, v.code
        )
        .join(plan_versions, v.id == s.plan_version_id)
        .where(s.tenant_id.in_(list(tenant_ids)), s.status.not_in(NOT_SUBSCRIBED))
        .order_by(s.tenant_id, s.starts_at, s.created_at)
    )
    return [dict(r) for r in conn.execute(query).mappings()]


def plan_documents(conn: Connection, version_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The stored documents of these plan versions (their meters and tier)."""
    v = plan_versions.c
    return {row.id: row.document for row in conn.execute(select(v.id, v.document).where(v.id.in_(list(version_ids))))}


def ledger_of(conn: Connection, tenant_ids: Sequence[str]) -> list[tuple[str, str, str, int, Any]]:
    """Every counted unit of the tenants (G3): (tenant, subscription, meter, units, at)."""
    u = usage_records.c
    query = (
        select(u.tenant_id, u.subscription_id, u.meter, u.units, u.at)
        .where(u.tenant_id.in_(list(tenant_ids)))
        .order_by(u.tenant_id)
    )
    return [tuple(r) for r in conn.execute(query).all()]


def occurrences_of(conn: Connection, tenant_ids: Sequence[str]) -> list[tuple[str, Any, int, int]]:
    """Every started occurrence: (tenant, started at, unique attendees counted, peak present)."""
    o = occurrences.c
    query = (
        select(o.tenant_id, o.started_at, o.counted, o.peak)
        .where(o.tenant_id.in_(list(tenant_ids)), o.started_at.is_not(None))
        .order_by(o.tenant_id)
    )
    return [tuple(r) for r in conn.execute(query).all()]


def invoiced_of(conn: Connection, tenant_ids: Sequence[str]) -> list[tuple[str, Any, int, str]]:
    """Every invoice line billed to the tenants, voided invoices excluded: (tenant, service start, amount, currency)."""
    line, inv = invoice_lines.c, invoices.c
    query = (
        select(line.tenant_id, line.service_start_at, line.amount_minor, inv.currency)
        .join(invoices, and_(inv.tenant_id == line.tenant_id, inv.id == line.invoice_id))
        .where(line.tenant_id.in_(list(tenant_ids)), inv.status != "void")
        .order_by(line.tenant_id)
    )
    return [tuple(r) for r in conn.execute(query).all()]
