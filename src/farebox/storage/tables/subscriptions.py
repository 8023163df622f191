"""Subscriptions and their recorded transitions (G3)."""

from sqlalchemy import Boolean, Column, ForeignKey, ForeignKeyConstraint, Index, Integer, String, Table, Text

from farebox.storage.tables.base import metadata
from farebox.storage.types import Json, UTCDateTime

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("plan_version_id", Integer, ForeignKey("plan_versions.id"), nullable=False),
    Column("status", String(24), nullable=False),
    Column("anchor_at", UTCDateTime, nullable=False),  # billing anchor (G2)
    Column("period_start_at", UTCDateTime, nullable=False),
    Column("period_end_at", UTCDateTime, nullable=False),
    Column("trial_ends_at", UTCDateTime, nullable=True),
    Column("cancel_at_period_end", Boolean, nullable=False, default=False),
    Column("grace_ends_at", UTCDateTime, nullable=True),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("starts_at", UTCDateTime, nullable=False),  # an upcoming subscription starts later (G7)
    Column("created_at", UTCDateTime, nullable=False),
    Column("row_version", Integer, nullable=False, default=1),
    Column("settings", Json, nullable=False),  # e.g. customer session limit (A6)
    Column("replaces_id", String(40), nullable=True),  # G7: the subscription a plan change ends
    Column("trial_usage", Json, nullable=True),  # A3: meter -> units used in the trial
    Column("cancel_effective_at", UTCDateTime, nullable=True),  # G8
    Column("overdue_invoice_id", String(40), nullable=True),  # G9: the renewal invoice that failed
)
Index("ix_subscriptions_tenant_status", subscriptions.c.tenant_id, subscriptions.c.status)

subscription_transitions = Table(
    "subscription_transitions",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("subscription_id", String(40), nullable=False),
    Column("from_status", String(24), nullable=True),
    Column("to_status", String(24), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("cause", Text, nullable=False),  # the request, event or due item that caused it (G3)
    Column("details", Json, nullable=False),
    ForeignKeyConstraint(["tenant_id", "subscription_id"], ["subscriptions.tenant_id", "subscriptions.id"]),
)

sales_requests = Table(
    "sales_requests",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("catalog", String(64), nullable=False),
    Column("plan", String(64), nullable=False),
    Column("kind", String(24), nullable=False),  # contact_sales (S1) or book_a_demo (A5)
    Column("requested_by", Text, nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
)
