"""Payment customers, payment methods and payment attempts (G9)."""

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from farebox.storage.tables.base import metadata
from farebox.storage.types import Json, UTCDateTime

payment_customers = Table(
    "payment_customers",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("provider", String(24), primary_key=True),
    Column("customer_ref", String(120), nullable=False),  # e.g. Stripe's cus_...
    Column("created_at", UTCDateTime, nullable=False),
)

payment_methods = Table(
    "payment_methods",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("provider", String(24), nullable=False),
    Column("provider_ref", String(120), nullable=False),  # e.g. Stripe's pm_...
    Column("brand", String(24), nullable=False),
    Column("last4", String(4), nullable=False),
    Column("is_default", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("removed_at", UTCDateTime, nullable=True),
)

payment_attempts = Table(
    "payment_attempts",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("invoice_id", String(40), nullable=False),
    Column("attempt", Integer, nullable=False),  # 1 = first charge, then the dunning retries
    Column("idempotency_key", String(120), nullable=False),  # sent to the provider
    Column("provider", String(24), nullable=False),
    Column("provider_ref", String(120), nullable=True),
    Column("payment_method_id", String(40), nullable=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(12), nullable=False),  # succeeded | failed | pending | refunded
    Column("failure_code", String(40), nullable=True),
    Column("failure_message", Text, nullable=True),
    Column("details", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant_id", "idempotency_key", name="uq_payment_attempts_tenant_idempotency_key"),
)
Index("ix_payment_attempts_invoice", payment_attempts.c.tenant_id, payment_attempts.c.invoice_id)

provider_events = Table(
    "provider_events",
    metadata,
    Column("provider", String(24), primary_key=True),
    Column("event_id", String(120), primary_key=True),  # e.g. Stripe's evt_...: each is handled once
    Column("kind", String(80), nullable=False),
    Column("outcome", Text, nullable=False),  # what the first delivery answered; a replay answers it again
    Column("received_at", UTCDateTime, nullable=False),
)
