"""In-app notifications for a tenant's owners and admins (G6, G12), and the channel switches.

The list, the unread count and "mark read" are what the portal's bell and the
API show.  Read state is per tenant: one owner or admin reading an alert marks
it read for the billing team (*Decision*: billing alerts are a shared inbox).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from farebox.alerts import db as repo
from farebox.alerts.services.notify import CHANNELS
from farebox.bootstrap import Farebox
from farebox.clocks.service import now_for
from farebox.kernel import reasons
from farebox.kernel.access import Principal, require_billing_access, require_operator
from farebox.kernel.reasons import DomainError


@dataclass(frozen=True, slots=True)
class Notification:
    id: str
    kind: str
    title: str
    body: str
    severity: str
    created_at: datetime
    read_at: datetime | None
    subscription_id: str | None
    subject: str | None
    data: dict[str, Any]

    @property
    def is_read(self) -> bool:
        return self.read_at is not None

    @classmethod
    def of(cls, row: dict[str, Any]) -> Notification:
        return cls(
            row["id"],
            row["kind"],
            row["title"],
            row["body"],
            row["severity"],
            row["created_at"],
            row["read_at"],
            row["subscription_id"],
            row["subject"],
            dict(row["data"] or {}),
        )


@dataclass(frozen=True, slots=True)
class NotificationList:
    items: list[Notification]
    unread: int


def list_notifications(
    fb: Farebox, actor: Principal, tenant_id: str, *, unread_only: bool = False, limit: int = 50
) -> NotificationList:
    """The tenant's in-app notifications, newest first, with the unread count."""
    require_billing_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        now_for(uow, fb.clock, tenant_id)  # 404 for an unknown tenant
        rows = repo.list_notifications(uow.conn, tenant_id, unread_only=unread_only, limit=limit)
        return NotificationList([Notification.of(r) for r in rows], repo.count_unread(uow.conn, tenant_id))


def unread_count(fb: Farebox, actor: Principal, tenant_id: str) -> int:
    require_billing_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        return repo.count_unread(uow.conn, tenant_id)


def mark_read(fb: Farebox, actor: Principal, tenant_id: str, notification_id: str) -> Notification:
    require_billing_access(actor, tenant_id)
    with fb.uow() as uow:
        now = now_for(uow, fb.clock, tenant_id)
        if repo.get_notification(uow.conn, tenant_id, notification_id) is None:
            raise DomainError(reasons.NOT_FOUND, what="Notification")
        repo.mark_read(uow.conn, tenant_id, notification_id=notification_id, at=now, by=actor.label())
        row = repo.get_notification(uow.conn, tenant_id, notification_id)
        uow.commit()
    assert row is not None
    return Notification.of(row)


def mark_all_read(fb: Farebox, actor: Principal, tenant_id: str) -> int:
    require_billing_access(actor, tenant_id)
    with fb.uow() as uow:
        now = now_for(uow, fb.clock, tenant_id)
        count = repo.mark_read(uow.conn, tenant_id, notification_id=None, at=now, by=actor.label())
        uow.commit()
    return count


def all_alerts(fb: Farebox, actor: Principal, tenant_id: str) -> list[Notification]:
    """Every alert raised for the tenant (in-app or not), oldest first: the record of what fired."""
    require_billing_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        return [Notification.of(r) for r in repo.all_notifications(uow.conn, tenant_id)]


# --- channels -----------------------------------------------------------------------
def channels(fb: Farebox, actor: Principal, tenant_id: str | None = None) -> dict[str, bool]:
    """Channel switches of the operator (tenant_id None) or of one tenant; unset means on."""
    scope = _scope(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        stored = repo.channel_settings(uow.conn, [scope])
    return {c: stored.get((scope, c), True) for c in CHANNELS}


def set_channel(
    fb: Farebox, actor: Principal, *, channel: str, enabled: bool, tenant_id: str | None = None
) -> dict[str, bool]:
    """Turn a channel (in_app, email, webhook) on or off for the operator or one tenant."""
    scope = _scope(actor, tenant_id)
    if channel not in CHANNELS:
        raise DomainError(
            reasons.VALIDATION_ERROR,
            detail=f"channel must be one of {', '.join(CHANNELS)}",
            details={"field": "channel"},
        )
    with fb.uow() as uow:
        repo.set_channel(uow.conn, scope=scope, channel=channel, enabled=enabled, now=fb.clock.now())
        uow.commit()
    return channels(fb, actor, tenant_id)


def _scope(actor: Principal, tenant_id: str | None) -> str:
    if tenant_id is None:
        require_operator(actor)
        return repo.OPERATOR
    require_billing_access(actor, tenant_id)
    return tenant_id
