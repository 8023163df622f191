"""Subscriptions and their transitions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from farebox.adapters.catalog_files import plan_from_document
from farebox.adapters.db.ids import new_id
from farebox.adapters.db.tables.core import plan_versions
from farebox.adapters.db.tables.subscriptions import subscription_transitions, subscriptions
from farebox.domain.periods import Period
from farebox.domain.subscriptions import LIVE_STATUSES, Status, Subscription

_PLAN_CACHE: dict[int, tuple[str, Any]] = {}


def _plan(conn: Connection, version_id: int) -> tuple[str, Any]:
    # Plan versions never change once written, so they can be cached for the process.
    cached = _PLAN_CACHE.get(version_id)
    if cached is None:
        row = conn.execute(select(plan_versions).where(plan_versions.c.id == version_id)).mappings().one()
        cached = (row["catalog"], plan_from_document(row["document"], catalog=row["catalog"], code=row["code"]))
        _PLAN_CACHE[version_id] = cached
    return cached


def to_domain(conn: Connection, row: Any) -> Subscription:
    catalog, plan = _plan(conn, row["plan_version_id"])
    return Subscription(
        tenant_id=row["tenant_id"],
        id=row["id"],
        plan=plan,
        plan_version_id=row["plan_version_id"],
        catalog=catalog,
        status=Status(row["status"]),
        anchor_at=row["anchor_at"],
        period=Period(row["period_start_at"], row["period_end_at"], 0),
        starts_at=row["starts_at"],
        trial_ends_at=row["trial_ends_at"],
        cancel_at_period_end=row["cancel_at_period_end"],
        grace_ends_at=row["grace_ends_at"],
        ended_at=row["ended_at"],
        settings=row["settings"] or {},
    )


def insert_subscription(conn: Connection, **values: Any) -> None:
    conn.execute(insert(subscriptions).values(**values))


def get(conn: Connection, tenant_id: str, subscription_id: str, *, for_update: bool = False) -> Subscription | None:
    query = select(subscriptions).where(subscriptions.c.tenant_id == tenant_id, subscriptions.c.id == subscription_id)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    return to_domain(conn, row) if row else None


def current(conn: Connection, tenant_id: str, *, for_update: bool = False) -> Subscription | None:
    """The tenant's live subscription, or else its latest ended one, or None."""
    query = (
        select(subscriptions)
        .where(subscriptions.c.tenant_id == tenant_id, subscriptions.c.status != Status.UPCOMING.value)
        .order_by(subscriptions.c.created_at.desc(), subscriptions.c.id.desc())
    )
    if for_update:
        query = query.with_for_update()
    rows = list(conn.execute(query).mappings())
    for row in rows:
        if Status(row["status"]) in LIVE_STATUSES:
            return to_domain(conn, row)
    return to_domain(conn, rows[0]) if rows else None


def update_subscription(conn: Connection, tenant_id: str, subscription_id: str, **values: Any) -> None:
    conn.execute(
        update(subscriptions)
        .where(subscriptions.c.tenant_id == tenant_id, subscriptions.c.id == subscription_id)
        .values(row_version=subscriptions.c.row_version + 1, **values)
    )


def record_transition(
    conn: Connection,
    *,
    tenant_id: str,
    subscription_id: str,
    from_status: Status | None,
    to_status: Status,
    at: datetime,
    cause: str,
    details: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        insert(subscription_transitions).values(
            tenant_id=tenant_id,
            id=new_id("str"),
            subscription_id=subscription_id,
            from_status=from_status.value if from_status else None,
            to_status=to_status.value,
            at=at,
            cause=cause,
            details=details or {},
        )
    )


def transitions(conn: Connection, tenant_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(subscription_transitions)
        .where(subscription_transitions.c.tenant_id == tenant_id)
        .order_by(subscription_transitions.c.at, subscription_transitions.c.id)
    )
    return [dict(r) for r in rows.mappings()]
