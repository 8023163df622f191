"""Notifications (in-app), channels, deliveries (log, replay) and webhook endpoints (secret rotation)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field, StrictBool

from farebox.alerts.domain.alerts import AlertKind
from farebox.alerts.services import delivery, notifications, webhook_endpoints
from farebox.entrypoints.api.deps import FB, Caller
from farebox.entrypoints.api.schemas import Body, JsonInt

router = APIRouter(tags=["notifications"])


class NotificationOut(BaseModel):
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


class NotificationListOut(BaseModel):
    unread: int
    items: list[NotificationOut]


class ChannelIn(Body):
    channel: Literal["in_app", "email", "webhook"]
    enabled: StrictBool


class AttemptOut(BaseModel):
    at: datetime
    ok: bool
    status_code: int | None
    error: str | None


class DeliveryOut(BaseModel):
    id: str
    tenant_id: str
    notification_id: str
    channel: str
    target: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    log: list[AttemptOut] = []


class OutboxMailOut(BaseModel):
    delivery_id: str
    to: str
    subject: str
    text: str
    status: str
    created_at: datetime


# http(s), a host name or IPv4 address (no IPv6 literal: use a name), an optional port, then a path
WEBHOOK_URL = r"^https?://[^\s\x00-\x20\x7f-\x9f/?#:@\[\]]+(:[0-9]{1,5})?([/?#][^\s\x00-\x20\x7f-\x9f]*)?$"


class EndpointIn(Body):
    url: str = Field(min_length=8, max_length=2000, pattern=WEBHOOK_URL)
    kinds: list[AlertKind] = Field(default_factory=list, max_length=50)


class RotateIn(Body):
    grace_hours: JsonInt = Field(default=24, ge=0, le=24 * 30)


class EndpointOut(BaseModel):
    id: str
    url: str
    kinds: list[str]
    enabled: bool
    created_at: datetime
    previous_secret_expires_at: datetime | None
    secret: str | None = Field(default=None, description="Shown when created or rotated only")


def _n(n: notifications.Notification) -> NotificationOut:
    return NotificationOut(**{f: getattr(n, f) for f in NotificationOut.model_fields})


def _d(d: delivery.Delivery) -> DeliveryOut:
    log = [AttemptOut(at=a.at, ok=a.ok, status_code=a.status_code, error=a.error) for a in d.log]
    return DeliveryOut(**{f: getattr(d, f) for f in DeliveryOut.model_fields if f != "log"}, log=log)


def _e(e: webhook_endpoints.WebhookEndpoint) -> EndpointOut:
    return EndpointOut(
        id=e.id,
        url=e.url,
        kinds=list(e.kinds),
        enabled=e.enabled,
        created_at=e.created_at,
        previous_secret_expires_at=e.previous_secret_expires_at,
        secret=e.secret,
    )


@router.get(
    "/v1/tenants/{tenant_id}/notifications",
    response_model=NotificationListOut,
    summary="In-app notifications, newest first (owner, admin)",
)
def list_notifications(
    tenant_id: str, fb: FB, caller: Caller, unread: bool = False, limit: int = Query(default=50, ge=1, le=500)
):
    listed = notifications.list_notifications(fb, caller, tenant_id, unread_only=unread, limit=limit)
    return NotificationListOut(unread=listed.unread, items=[_n(n) for n in listed.items])


@router.post("/v1/tenants/{tenant_id}/notifications/read-all", summary="Mark every notification read (owner, admin)")
def mark_all_read(tenant_id: str, fb: FB, caller: Caller) -> dict[str, int]:
    return {"marked": notifications.mark_all_read(fb, caller, tenant_id)}


@router.post(
    "/v1/tenants/{tenant_id}/notifications/{notification_id}/read",
    response_model=NotificationOut,
    summary="Mark one read (owner, admin)",
)
def mark_read(tenant_id: str, notification_id: str, fb: FB, caller: Caller):
    return _n(notifications.mark_read(fb, caller, tenant_id, notification_id))


@router.get("/v1/tenants/{tenant_id}/notification-channels", summary="The tenant's channel switches (owner, admin)")
def tenant_channels(tenant_id: str, fb: FB, caller: Caller) -> dict[str, bool]:
    return notifications.channels(fb, caller, tenant_id)


@router.put(
    "/v1/tenants/{tenant_id}/notification-channels", summary="Turn a channel on or off for the tenant (owner, admin)"
)
def set_tenant_channel(tenant_id: str, body: ChannelIn, fb: FB, caller: Caller) -> dict[str, bool]:
    return notifications.set_channel(fb, caller, tenant_id=tenant_id, channel=body.channel, enabled=body.enabled)


@router.get("/v1/notification-channels", summary="The operator's channel switches (operator)")
def operator_channels(fb: FB, caller: Caller) -> dict[str, bool]:
    return notifications.channels(fb, caller)


@router.put("/v1/notification-channels", summary="Turn a channel on or off for every tenant (operator)")
def set_operator_channel(body: ChannelIn, fb: FB, caller: Caller) -> dict[str, bool]:
    return notifications.set_channel(fb, caller, channel=body.channel, enabled=body.enabled)


@router.get(
    "/v1/tenants/{tenant_id}/email-outbox",
    response_model=list[OutboxMailOut],
    summary="The tenant's e-mails as rendered (owner, admin)",
)
def email_outbox(tenant_id: str, fb: FB, caller: Caller, limit: int = Query(default=100, ge=1, le=1000)):
    return [
        OutboxMailOut(**{f: getattr(m, f) for f in OutboxMailOut.model_fields})
        for m in delivery.email_outbox(fb, caller, tenant_id, limit=limit)
    ]


@router.get(
    "/v1/deliveries",
    response_model=list[DeliveryOut],
    summary="Deliveries: every tenant's (operator) or one tenant's (owner, admin)",
)
def list_deliveries(
    fb: FB, caller: Caller, tenant_id: str | None = Query(default=None, max_length=64),
    status: Literal["pending", "delivered", "failed"] | None = None, channel: Literal["email", "webhook"] | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
):
    return [
        _d(d)
        for d in delivery.list_deliveries(fb, caller, tenant_id=tenant_id, status=status, channel=channel, limit=limit)
    ]


@router.get("/v1/deliveries/{delivery_id}", response_model=DeliveryOut, summary="One delivery with its log of attempts")
def get_delivery(delivery_id: str, fb: FB, caller: Caller):
    return _d(delivery.get_delivery(fb, caller, delivery_id))


@router.post(
    "/v1/deliveries/{delivery_id}/replay", response_model=DeliveryOut, summary="Send again, same webhook-id (operator)"
)
def replay(delivery_id: str, fb: FB, caller: Caller):
    return _d(delivery.replay(fb, caller, delivery_id))


@router.post(
    "/v1/webhook-endpoints",
    response_model=EndpointOut,
    status_code=201,
    summary="Add a webhook endpoint; its secret is shown once (operator)",
)
def create_endpoint(body: EndpointIn, fb: FB, caller: Caller):
    return _e(webhook_endpoints.create_endpoint(fb, caller, url=body.url, kinds=tuple(body.kinds)))


@router.get("/v1/webhook-endpoints", response_model=list[EndpointOut], summary="Webhook endpoints (operator)")
def list_endpoints(fb: FB, caller: Caller):
    return [_e(e) for e in webhook_endpoints.list_endpoints(fb, caller)]


@router.post(
    "/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
    response_model=EndpointOut,
    summary="New secret; the old one still signs for the grace window (operator)",
)
def rotate_secret(endpoint_id: str, fb: FB, caller: Caller, body: RotateIn | None = None):
    grace = timedelta(hours=(body or RotateIn()).grace_hours)
    return _e(webhook_endpoints.rotate_secret(fb, caller, endpoint_id, grace=grace))


@router.delete("/v1/webhook-endpoints/{endpoint_id}", status_code=204, summary="Remove a webhook endpoint (operator)")
def delete_endpoint(endpoint_id: str, fb: FB, caller: Caller) -> Response:
    webhook_endpoints.delete_endpoint(fb, caller, endpoint_id)
    return Response(status_code=204)
