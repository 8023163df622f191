"""Portal sign-in links and sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from farebox.adapters.db.tables.portal import portal_sessions, portal_sign_in_links


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
    row = conn.execute(
        select(portal_sessions).where(portal_sessions.c.token_hash == token_hash, portal_sessions.c.expires_at > now)
    ).mappings().first()
    return dict(row) if row else None


def delete_session(conn: Connection, token_hash: str) -> None:
    conn.execute(delete(portal_sessions).where(portal_sessions.c.token_hash == token_hash))
