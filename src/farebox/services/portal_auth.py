"""Signing in to the portal: magic links for tenant members, API keys for the operator.

A magic link is single use, expires after 15 minutes, and is delivered by the
container's `send_sign_in_link` port (printed to the console in the embedded
default).  A session is a random token in an HttpOnly cookie; the database
keeps only its hash, with the member's role and a CSRF token that every form
must echo.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from farebox.adapters.db.repos import portal as repo
from farebox.adapters.db.repos import tenants as tenants_repo
from farebox.bootstrap import Farebox
from farebox.domain.access import Principal, Role
from farebox.services import tenants

LINK_LIFETIME = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def request_link(fb: Farebox, *, tenant_id: str, email: str, base_url: str) -> bool:
    """Send a sign-in link if `email` is a member of `tenant_id`.

    Returns whether one was sent; the page says the same thing either way, so
    nobody can probe who is a member."""
    now = fb.clock.now()
    token = secrets.token_urlsafe(32)
    with fb.uow() as uow:
        member = tenants_repo.get_member_by_email(
            uow.conn, tenant_id, email.strip().lower()
        ) or tenants_repo.get_member_by_email(uow.conn, tenant_id, email.strip())
        if member is None:
            return False
        repo.insert_link(
            uow.conn,
            token_hash=_hash(token),
            tenant_id=tenant_id,
            email=member["email"],
            created_at=now,
            expires_at=now + LINK_LIFETIME,
        )
        uow.commit()
    fb.send_sign_in_link(member["email"], f"{base_url.rstrip('/')}/portal/sign-in/{token}")
    return True


@dataclass(frozen=True)
class PortalSession:
    token: str  # goes in the cookie
    principal: Principal
    csrf_token: str


def _open_session(fb: Farebox, principal: Principal) -> PortalSession:
    now = fb.clock.now()
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    with fb.uow() as uow:
        repo.insert_session(
            uow.conn,
            token_hash=_hash(token),
            tenant_id=principal.tenant_id,
            email=principal.email,
            role=principal.role.value,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
        uow.commit()
    return PortalSession(token, principal, csrf)


def redeem_link(fb: Farebox, token: str) -> PortalSession | None:
    now = fb.clock.now()
    with fb.uow() as uow:
        link = repo.use_link(uow.conn, _hash(token), now)
        member = tenants_repo.get_member_by_email(uow.conn, link["tenant_id"], link["email"]) if link else None
        uow.commit()
    if member is None:
        return None
    return _open_session(
        fb,
        Principal(
            Role(member["role"]), tenant_id=member["tenant_id"], email=member["email"], key_id=f"portal:{member['id']}"
        ),
    )


def operator_sign_in(fb: Farebox, api_key: str) -> PortalSession | None:
    principal = tenants.authenticate(fb, api_key)
    if principal is None or not principal.is_operator:
        return None
    return _open_session(fb, Principal(Role.OPERATOR, key_id=principal.key_id, email="operator"))


def session(fb: Farebox, token: str | None) -> PortalSession | None:
    if not token:
        return None
    with fb.uow(readonly=True) as uow:
        row = repo.get_session(uow.conn, _hash(token), fb.clock.now())
    if row is None:
        return None
    principal = Principal(Role(row["role"]), tenant_id=row["tenant_id"], email=row["email"], key_id="portal-session")
    return PortalSession(token, principal, row["csrf_token"])


def sign_out(fb: Farebox, token: str) -> None:
    with fb.uow() as uow:
        repo.delete_session(uow.conn, _hash(token))
        uow.commit()
