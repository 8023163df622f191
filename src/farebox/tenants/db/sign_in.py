"""Portal sign-in links and sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update

from farebox.storage.tables.core import api_keys
from farebox.storage.tables.portal import portal_link_requests, portal_sessions, portal_sign_in_links


def insert_link(conn: Connection, **values: Any) -> None:
    conn.execute(insert(portal_sign_in_links).values(**values))


def use_link(conn: Connection, token_hash: str, now: datetime) -> dict[str, Any] | None:
    """Mark an unused, unexpired link used and return it; None otherwise (single use)."""
    result = conn.execute(
        update(portal_sign_in_links)
        .where(
            portal_sign_in_links.c.token_hash == token_hash,
            portal_sign_in_links.c.used_at.is_(None),
            portal_sign_in_links.c.expires_at > now,
        )
        .values(used_at=now)
    )
    if result.rowcount != 1:
        return None
    row = (
        conn.execute(select(portal_sign_in_links).where(portal_sign_in_links.c.token_hash == token_hash))
        .mappings()
        .one()
    )
    return dict(row)


def insert_session(conn: Connection, **values: Any) -> None:
    conn.execute(insert(portal_sessions).values(**values))


def get_session(conn: Connection, token_hash: str, now: datetime) -> dict[str, Any] | None:
    """An unexpired session; one opened with an API key only while that key is neither revoked nor expired."""
    s, k = portal_sessions.c, api_keys.c
    key_valid = and_(k.id.is_not(None), k.revoked_at.is_(None), or_(k.expires_at.is_(None), k.expires_at > now))
    query = (
        select(portal_sessions)
        .select_from(portal_sessions.outerjoin(api_keys, k.id == s.api_key_id))
        .where(s.token_hash == token_hash, s.expires_at > now)
        .where(or_(s.api_key_id.is_(None), s.api_key_id.like("env:%"), key_valid))
    )
    row = conn.execute(query).mappings().first()
    return dict(row) if row else None


def delete_sessions_of_key(conn: Connection, api_key_id: str) -> int:
    return conn.execute(delete(portal_sessions).where(portal_sessions.c.api_key_id == api_key_id)).rowcount


def record_link_request(conn: Connection, **values: Any) -> None:
    conn.execute(insert(portal_link_requests).values(**values))


def link_requests_since(
    conn: Connection, since: datetime, *, client: str, tenant_id: str, email_hash: str
) -> tuple[int, int]:
    """How many sign-in links were asked for since `since`: from this client address, and for this e-mail."""
    r = portal_link_requests.c
    by_client = select(func.count()).where(r.client == client, r.requested_at > since).scalar_subquery()
    by_email = (
        select(func.count())
        .where(r.tenant_id == tenant_id, r.email_hash == email_hash, r.requested_at > since)
        .scalar_subquery()
    )
    row = conn.execute(select(by_client, by_email)).one()
    return int(row[0]), int(row[1])


def sweep(conn: Connection, now: datetime, *, requests_before: datetime) -> int:
    """Expired links and sessions, and link requests older than the rate-limit window."""
    removed = conn.execute(delete(portal_sign_in_links).where(portal_sign_in_links.c.expires_at <= now)).rowcount
    removed += conn.execute(delete(portal_sessions).where(portal_sessions.c.expires_at <= now)).rowcount
    removed += conn.execute(
        delete(portal_link_requests).where(portal_link_requests.c.requested_at < requests_before)
    ).rowcount
    return removed


def delete_session(conn: Connection, token_hash: str) -> None:
    conn.execute(delete(portal_sessions).where(portal_sessions.c.token_hash == token_hash))
