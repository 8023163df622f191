"""Portal sign-in: magic-link tokens and browser sessions.

Both are looked up by the hash of a secret before the tenant is known, so
they are global tables (like api_keys); only hashes are stored.
"""

from sqlalchemy import Column, Index, String, Table, Text

from farebox.storage.tables.base import metadata
from farebox.storage.types import UTCDateTime

portal_sign_in_links = Table(
    "portal_sign_in_links",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("email", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
)

portal_sessions = Table(
    "portal_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=True),  # NULL: an operator session
    Column("email", Text, nullable=True),
    Column("role", String(16), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("api_key_id", String(40), nullable=True),  # an operator session ends with the key it was opened with
)
Index("ix_portal_sessions_tenant_id", portal_sessions.c.tenant_id)

portal_link_requests = Table(
    "portal_link_requests",
    metadata,
    # every request for a sign-in link, member or not, for the rate limits (per address, per e-mail)
    Column("id", String(40), primary_key=True),
    Column("client", String(64), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("email_hash", String(64), nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
)
Index("ix_portal_link_requests_client", portal_link_requests.c.client, portal_link_requests.c.requested_at)
Index(
    "ix_portal_link_requests_email",
    portal_link_requests.c.tenant_id,
    portal_link_requests.c.email_hash,
    portal_link_requests.c.requested_at,
)
