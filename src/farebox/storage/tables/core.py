"""Catalogs, plan versions, test clocks, tenants, members, API keys, idempotency, due work."""

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from farebox.storage.tables.base import metadata
from farebox.storage.types import Json, UTCDateTime

catalogs = Table(
    "catalogs",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("title", Text, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("document", Json, nullable=False),
    Column("loaded_at", UTCDateTime, nullable=False),
)

plan_versions = Table(
    "plan_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("catalog", String(64), ForeignKey("catalogs.name"), nullable=False),
    Column("code", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("document", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("current", Boolean, nullable=False),
    UniqueConstraint("catalog", "code", "version", name="uq_plan_versions_catalog_code_version"),
)

test_clocks = Table(
    "test_clocks",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", Text, nullable=False),
    Column("now_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("test_clock_id", String(40), ForeignKey("test_clocks.id"), nullable=True),
    Column("billing_email", Text, nullable=True),
    Column("tax_rate_bp", Integer, nullable=False, default=0),  # basis points: 2000 = 20%
    Column("tax_id", Text, nullable=True),
    Column("legal_name", Text, nullable=True),  # printed on invoices instead of `name` when set
    Column("billing_address", Text, nullable=True),  # postal address, lines separated by newlines
    Column("trial_used_at", UTCDateTime, nullable=True),  # A4: once per tenant
    # invoiced by bank transfer (set by an operator): invoices are due this many days after issue, never charged
    Column("payment_terms_days", Integer, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)
Index("ix_tenants_test_clock_id", tenants.c.test_clock_id)

members = Table(
    "members",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("email", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant_id", "email", name="uq_members_tenant_email"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),  # the public prefix of the key
    Column("secret_hash", String(64), nullable=False),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=True),  # NULL: operator key
    Column("role", String(16), nullable=False),  # operator | owner | admin | member
    Column("name", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),  # refused from this instant on
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    # scoped by the tenant the request is about ("" for none) and the caller's role,
    # so an answer is replayed only to a caller that the same authorization lets through
    Column("tenant_id", String(64), primary_key=True),
    Column("principal", String(16), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
Index("ix_idempotency_keys_created_at", idempotency_keys.c.created_at)  # the retention sweep

due_items = Table(
    "due_items",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("ref", String(64), nullable=False),  # what it is about, e.g. a subscription id
    Column("due_at", UTCDateTime, nullable=False),
    Column("payload", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("done_at", UTCDateTime, nullable=True),
    Column("outcome", Text, nullable=True),
    UniqueConstraint("tenant_id", "kind", "ref", "due_at", name="uq_due_items_tenant_kind_ref_due"),
)
Index("ix_due_items_pending", due_items.c.done_at, due_items.c.due_at)
