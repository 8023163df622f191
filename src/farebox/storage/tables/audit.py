"""The audit log: who changed what, when, with what before and after."""

from sqlalchemy import Column, Index, String, Table, Text

from farebox.storage.tables.base import metadata
from farebox.storage.types import Json, UTCDateTime

OPERATOR_SCOPE = ""  # tenant_id of entries about operator-wide things (catalogs, operator keys)

audit_log = Table(
    "audit_log",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", Text, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("subject", Text, nullable=True),
    Column("data", Json, nullable=False),
)
Index("ix_audit_log_tenant_at", audit_log.c.tenant_id, audit_log.c.at)
