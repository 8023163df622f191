"""Queries of the alerts area: the notification outbox, deliveries, channels, webhook endpoints."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from farebox.storage.tables.alerts import (
    deliveries,
    delivery_attempts,
    notification_channels,
    notifications,
    webhook_endpoints,
)
from farebox.storage.tables.core import catalogs, members, plan_versions, tenants

OPERATOR = "operator"


def _insert(conn: Connection):
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


# --- notifications -------------------------------------------------------------
def insert_notification(conn: Connection, **values: Any) -> bool:
    """Insert unless (tenant, dedupe_key) exists; True if this call inserted it (exactly once, G12)."""
    return bool(insert_notifications(conn, [values]))


def insert_notifications(conn: Connection, rows: Sequence[dict[str, Any]]) -> set[str]:
    """`insert_notification` of many rows in one statement; the ids of those inserted."""
    if not rows:
        return set()
    statement = (
        _insert(conn)(notifications)
        .on_conflict_do_nothing(index_elements=["tenant_id", "dedupe_key"])
        .returning(notifications.c.id)
    )
    return set(
        conn.execute(statement, list(rows)).scalars()
    )  # (rowcount is not reliable for ON CONFLICT with every driver)


def list_notifications(
    conn: Connection, tenant_id: str, *, unread_only: bool = False, limit: int = 50
) -> list[dict[str, Any]]:
    query = select(notifications).where(notifications.c.tenant_id == tenant_id, notifications.c.in_app.is_(True))
    if unread_only:
        query = query.where(notifications.c.read_at.is_(None))
    query = query.order_by(notifications.c.created_at.desc(), notifications.c.id.desc()).limit(limit)
    return [dict(r) for r in conn.execute(query).mappings()]


def all_notifications(conn: Connection, tenant_id: str) -> list[dict[str, Any]]:
    """Every alert raised for the tenant, in-app or not, oldest first."""
    query = (
        select(notifications)
        .where(notifications.c.tenant_id == tenant_id)
        .order_by(notifications.c.created_at, notifications.c.id)
    )
    return [dict(r) for r in conn.execute(query).mappings()]


def count_unread(conn: Connection, tenant_id: str) -> int:
    return conn.execute(
        select(func.count()).select_from(notifications).where(
            notifications.c.tenant_id == tenant_id, notifications.c.in_app.is_(True), notifications.c.read_at.is_(None)
        )
    ).scalar_one()


def mark_read(conn: Connection, tenant_id: str, *, notification_id: str | None, at: datetime, by: str) -> int:
    query = update(notifications).where(notifications.c.tenant_id == tenant_id, notifications.c.read_at.is_(None))
    if notification_id is not None:
        query = query.where(notifications.c.id == notification_id)
    return conn.execute(query.values(read_at=at, read_by=by)).rowcount


def get_notification(conn: Connection, tenant_id: str, notification_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(notifications).where(notifications.c.tenant_id == tenant_id, notifications.c.id == notification_id)
    ).mappings().first()
    return dict(row) if row else None


# --- recipients ------------------------------------------------------------------
def billing_recipients(conn: Connection, tenant_id: str) -> list[str]:
    """Owners' and admins' addresses, then the tenant's extra billing recipient (deduplicated)."""
    return billing_recipients_of(conn, [tenant_id])[tenant_id]


def billing_recipients_of(conn: Connection, tenant_ids: Iterable[str]) -> dict[str, list[str]]:
    """`billing_recipients` of each of these tenants, in two queries."""
    ids = sorted(set(tenant_ids))
    found: dict[str, list[str | None]] = {t: [] for t in ids}
    if not ids:
        return {}
    for tenant_id, email in conn.execute(
        select(members.c.tenant_id, members.c.email)
        .where(members.c.tenant_id.in_(ids), members.c.role.in_(("owner", "admin")))
        .order_by(members.c.tenant_id, members.c.created_at, members.c.id)
    ):
        found[tenant_id].append(email)
    for tenant_id, extra in conn.execute(select(tenants.c.id, tenants.c.billing_email).where(tenants.c.id.in_(ids))):
        found[tenant_id].append(extra)
    recipients: dict[str, list[str]] = {}
    for tenant_id, emails in found.items():
        seen = recipients[tenant_id] = []
        for email in emails:
            if email and email.lower() not in (s.lower() for s in seen):
                seen.append(email)
    return recipients


def tenant_name(conn: Connection, tenant_id: str) -> str:
    return conn.execute(select(tenants.c.name).where(tenants.c.id == tenant_id)).scalar_one_or_none() or tenant_id


def plan_name(conn: Connection, plan_version_id: Any) -> str | None:
    try:
        version_id = int(plan_version_id)
    except (TypeError, ValueError):
        return None
    document = conn.execute(
        select(plan_versions.c.document).where(plan_versions.c.id == version_id)
    ).scalar_one_or_none()
    if not isinstance(document, dict):
        return None
    return (document.get("plan") or {}).get("name") or document.get("name")


def meter_unit(conn: Connection, catalog: str, meter: str) -> str:
    document = conn.execute(select(catalogs.c.document).where(catalogs.c.name == catalog)).scalar_one_or_none() or {}
    return str(((document.get("meters") or {}).get(meter) or {}).get("unit") or meter)


# --- channels --------------------------------------------------------------------
def channel_settings(conn: Connection, scopes: list[str]) -> dict[tuple[str, str], bool]:
    rows = conn.execute(select(notification_channels).where(notification_channels.c.scope.in_(scopes)))
    return {(r.scope, r.channel): r.enabled for r in rows}


def set_channel(conn: Connection, *, scope: str, channel: str, enabled: bool, now: datetime) -> None:
    conn.execute(
        _insert(conn)(notification_channels)
        .values(scope=scope, channel=channel, enabled=enabled, updated_at=now)
        .on_conflict_do_update(index_elements=["scope", "channel"], set_={"enabled": enabled, "updated_at": now})
    )


# --- webhook endpoints -------------------------------------------------------------
def insert_endpoint(conn: Connection, **values: Any) -> None:
    conn.execute(insert(webhook_endpoints).values(scope=OPERATOR, **values))


def get_endpoint(conn: Connection, endpoint_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(webhook_endpoints).where(webhook_endpoints.c.scope == OPERATOR, webhook_endpoints.c.id == endpoint_id)
    ).mappings().first()
    return dict(row) if row else None


def list_endpoints(conn: Connection, *, enabled_only: bool = False) -> list[dict[str, Any]]:
    query = select(webhook_endpoints).where(webhook_endpoints.c.scope == OPERATOR)
    if enabled_only:
        query = query.where(webhook_endpoints.c.enabled.is_(True))
    return [
        dict(r) for r in conn.execute(query.order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id)).mappings()
    ]


def update_endpoint(conn: Connection, endpoint_id: str, **values: Any) -> int:
    return conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.scope == OPERATOR, webhook_endpoints.c.id == endpoint_id)
        .values(**values)
    ).rowcount


def delete_endpoint(conn: Connection, endpoint_id: str) -> int:
    return conn.execute(
        delete(webhook_endpoints).where(webhook_endpoints.c.scope == OPERATOR, webhook_endpoints.c.id == endpoint_id)
    ).rowcount


# --- deliveries -------------------------------------------------------------------
def insert_delivery(conn: Connection, **values: Any) -> bool:
    return insert_deliveries(conn, [values]) == 1


def insert_deliveries(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert deliveries unless the same (notification, channel, target) exists; how many were inserted."""
    if not rows:
        return 0
    statement = (
        _insert(conn)(deliveries)
        .on_conflict_do_nothing(index_elements=["tenant_id", "notification_id", "channel", "target"])
        .returning(deliveries.c.id)
    )
    return len(conn.execute(statement, list(rows)).all())



def claim_due(conn: Connection, *, now: datetime, channels: tuple[str, ...], limit: int) -> list[dict[str, Any]]:
    """Pending deliveries due at `now` (locked, skipping locked ones, on PostgreSQL)."""
    query = (
        select(deliveries)
        .where(
            deliveries.c.status == "pending",
            deliveries.c.channel.in_(channels),
            or_(deliveries.c.next_attempt_at.is_(None), deliveries.c.next_attempt_at <= now),
        )
        .order_by(deliveries.c.created_at, deliveries.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [dict(r) for r in conn.execute(query).mappings()]


def count_undelivered(conn: Connection) -> dict[tuple[str, str], int]:
    """Deliveries still pending or failed, counted by (channel, status)."""
    query = (
        select(deliveries.c.channel, deliveries.c.status, func.count())
        .where(deliveries.c.status.in_(("pending", "failed")))
        .group_by(deliveries.c.channel, deliveries.c.status)
    )
    return {(channel, status): n for channel, status, n in conn.execute(query)}


def update_delivery(conn: Connection, tenant_id: str, delivery_id: str, **values: Any) -> None:
    conn.execute(
        update(deliveries).where(deliveries.c.tenant_id == tenant_id, deliveries.c.id == delivery_id).values(**values)
    )


def get_delivery(conn: Connection, delivery_id: str, tenant_id: str | None = None) -> dict[str, Any] | None:
    query = select(deliveries).where(deliveries.c.id == delivery_id)
    if tenant_id is not None:
        query = query.where(deliveries.c.tenant_id == tenant_id)
    row = conn.execute(query).mappings().first()
    return dict(row) if row else None


def list_deliveries(
    conn: Connection,
    *,
    tenant_id: str | None = None,
    status: str | None = None,
    channel: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    conditions = []
    if tenant_id is not None:
        conditions.append(deliveries.c.tenant_id == tenant_id)
    if status is not None:
        conditions.append(deliveries.c.status == status)
    if channel is not None:
        conditions.append(deliveries.c.channel == channel)
    query = (
        select(deliveries)
        .where(and_(True, *conditions))
        .order_by(deliveries.c.created_at, deliveries.c.id)
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(query).mappings()]


def record_attempt(conn: Connection, **values: Any) -> None:
    conn.execute(insert(delivery_attempts).values(**values))


def attempts(conn: Connection, tenant_id: str, delivery_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(delivery_attempts)
        .where(delivery_attempts.c.tenant_id == tenant_id, delivery_attempts.c.delivery_id == delivery_id)
        .order_by(delivery_attempts.c.at, delivery_attempts.c.id)
    )
    return [dict(r) for r in rows.mappings()]
