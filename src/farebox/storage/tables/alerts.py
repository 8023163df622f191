"""Alerts and notifications: the outbox, deliveries and their log, channels, webhook endpoints.

`notifications` is the outbox and the in-app list at once: one row per alert,
unique per (tenant, dedupe_key), written in the transaction of the change that
caused it (G12).  `deliveries` are the e-mails and webhooks owed for it, sent
afterwards by the worker; `delivery_attempts` is their log.  Operator-level
rows (`notification_channels` with scope "operator", `webhook_endpoints`) are
keyed by a scope, like `idempotency_keys`.
"""

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from farebox.storage.tables.base import metadata
from farebox.storage.types import Json, UTCDateTime

notifications = Table(
    "notifications",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("dedupe_key", String(255), nullable=False),
    Column("subscription_id", String(40), nullable=True),
    Column("subject", String(64), nullable=True),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("data", Json, nullable=False),
    Column("in_app", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),  # the tenant's time (test clock or real)
    Column("read_at", UTCDateTime, nullable=True),
    Column("read_by", Text, nullable=True),
    UniqueConstraint("tenant_id", "dedupe_key", name="uq_notifications_tenant_dedupe"),
)
Index("ix_notifications_tenant_created", notifications.c.tenant_id, notifications.c.created_at)

deliveries = Table(
    "deliveries",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("id", String(40), primary_key=True),  # also the stable `webhook-id`
    Column("notification_id", String(40), nullable=False),
    Column("channel", String(16), nullable=False),  # email | webhook
    Column("target", Text, nullable=False),  # an e-mail address, or a webhook endpoint id
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=True),  # NULL: as soon as possible
    Column("last_error", Text, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint(
        "tenant_id", "notification_id", "channel", "target", name="uq_deliveries_tenant_notification_target"
    ),
)
Index("ix_deliveries_pending", deliveries.c.status, deliveries.c.next_attempt_at)
Index("ix_deliveries_id", deliveries.c.id)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("delivery_id", String(40), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
)
Index("ix_delivery_attempts_delivery", delivery_attempts.c.tenant_id, delivery_attempts.c.delivery_id)

notification_channels = Table(
    "notification_channels",
    metadata,
    Column("scope", String(64), primary_key=True),  # "operator", or a tenant id
    Column("channel", String(16), primary_key=True),  # in_app | email | webhook
    Column("enabled", Boolean, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("scope", String(64), primary_key=True),  # "operator"
    Column("id", String(40), primary_key=True),
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text, nullable=True),  # still signed with until previous_secret_expires_at
    Column("previous_secret_expires_at", UTCDateTime, nullable=True),
    Column("kinds", Json, nullable=False),  # alert kinds sent; [] for all
    Column("enabled", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
