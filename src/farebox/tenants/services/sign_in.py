"""Signing in to the portal: magic links for tenant members, API keys for the operator.

A magic link is single use, expires after 15 minutes, and is delivered by the
container's `send_sign_in_link` port: by e-mail when `FAREBOX_SMTP_URL` is set,
printed to the console in the embedded default only.  Its base is
`FAREBOX_PUBLIC_URL`, never the request's Host header (which a client could
make point elsewhere).  Opening the link shows a page whose button redeems it
(a POST), so a mail scanner that fetches the link does not use it up.  An
operator session ends with the API key it was opened with.  A session is a
random token in an HttpOnly cookie; the database keeps only its hash, with the
member's role and a CSRF token that every form must echo.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from html import escape

from farebox.bootstrap import Farebox
from farebox.kernel import reasons
from farebox.kernel.access import Principal, Role
from farebox.kernel.reasons import DomainError
from farebox.storage.ids import new_id
from farebox.tenants.db import sign_in as repo
from farebox.tenants.db import tenants as tenants_repo
from farebox.tenants.services import tenants

LINK_LIFETIME = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)
# at most this many links per (workspace, e-mail) and per client address within the window
RATE_WINDOW = timedelta(minutes=15)
LINKS_PER_EMAIL = 3
LINKS_PER_CLIENT = 30


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class LinkToSend:
    email: str
    url: str


def request_link(fb: Farebox, *, tenant_id: str, email: str, base_url: str, client: str = "") -> LinkToSend | None:
    """A sign-in link to send if `email` is a member of `tenant_id`; None otherwise.

    Members and non-members cost the same (one lookup, the same two inserts, one
    commit; the caller sends the link after answering), so neither the page nor its
    timing tells who is a member.  A link for a non-member is never redeemable.  More
    than `LINKS_PER_EMAIL` requests for one e-mail, or `LINKS_PER_CLIENT` from one client
    address, within `RATE_WINDOW` are refused with `sign_in_rate_limited`."""
    now = fb.clock.now()
    token = secrets.token_urlsafe(32)
    address = email.strip()
    email_hash = _hash(f"{tenant_id}\x1f{address.lower()}")
    with fb.uow() as uow:
        by_client, by_email = repo.link_requests_since(
            uow.conn, now - RATE_WINDOW, client=client, tenant_id=tenant_id, email_hash=email_hash
        )
        if by_email >= LINKS_PER_EMAIL or by_client >= LINKS_PER_CLIENT:
            raise DomainError(reasons.SIGN_IN_RATE_LIMITED, minutes=int(RATE_WINDOW.total_seconds() // 60))
        member = tenants_repo.get_member_by_email_ci(uow.conn, tenant_id, address)
        repo.record_link_request(
            uow.conn,
            id=new_id("lrq"),
            client=client[:64],
            tenant_id=tenant_id[:64],
            email_hash=email_hash,
            requested_at=now,
        )
        stored_email = member["email"] if member else address
        repo.insert_link(
            uow.conn,
            token_hash=_hash(token),
            tenant_id=tenant_id,
            email=stored_email,
            created_at=now,
            expires_at=now + LINK_LIFETIME,
        )
        uow.commit()
    if member is None:
        return None
    return LinkToSend(member["email"], f"{base_url.rstrip('/')}/portal/sign-in/{token}")


def send_link(fb: Farebox, link: LinkToSend) -> None:
    """Deliver a link through the container's port (e-mail when FAREBOX_SMTP_URL is set, else the console)."""
    fb.send_sign_in_link(link.email, link.url)


def mail_sign_in_link(smtp_url: str, email: str, link: str) -> None:
    """The sign-in link by e-mail through the one SMTP adapter; never written to the log."""
    from farebox import mail

    text = (
        f"Sign in to farebox with this link. It works once, for 15 minutes:\n\n{link}\n\n"
        "If you did not ask for it, ignore this message."
    )
    html = (
        f'<p>Sign in to farebox with <a href="{escape(link)}">this link</a>. It works once, for 15 minutes.</p>'
        "<p>If you did not ask for it, ignore this message.</p>"
    )
    message = mail.Mail(to=email, subject="Your farebox sign-in link", text=text, html=html, message_id="").message()
    del message["Message-ID"]  # the mailer stamps a fresh one
    mail.SmtpMailer(smtp_url).send(message)


@dataclass(frozen=True)
class PortalSession:
    token: str  # goes in the cookie
    principal: Principal
    csrf_token: str


def _open_session(fb: Farebox, principal: Principal, *, api_key_id: str | None = None) -> PortalSession:
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
            api_key_id=api_key_id,
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
    # the session lasts only as long as the key it was opened with (revoked or expired: signed out)
    return _open_session(
        fb, Principal(Role.OPERATOR, key_id=principal.key_id, email="operator"), api_key_id=principal.key_id
    )


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
