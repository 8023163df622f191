"""The operator's webhook endpoints: add, list, enable, remove, rotate the signing secret.

A rotated secret keeps signing (beside the new one) for a grace window, so a
receiver can switch secrets without missing or rejecting a message.  An
endpoint on a loopback, private or link-local address (cloud metadata, the
database, the admin interfaces next door) is refused unless the operator opts
in with `FAREBOX_WEBHOOK_ALLOW_PRIVATE=true`.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from farebox.alerts import db as repo
from farebox.alerts import webhooks
from farebox.alerts.domain.alerts import AlertKind
from farebox.bootstrap import Farebox
from farebox.kernel import reasons
from farebox.kernel.access import Principal, require_operator
from farebox.kernel.reasons import DomainError
from farebox.storage.ids import new_id

ROTATION_GRACE = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    id: str
    url: str
    kinds: tuple[str, ...]
    enabled: bool
    created_at: datetime
    previous_secret_expires_at: datetime | None
    secret: str | None = None  # shown when created or rotated only

    @classmethod
    def of(cls, row: dict[str, Any], *, with_secret: bool = False) -> WebhookEndpoint:
        return cls(
            row["id"],
            row["url"],
            tuple(row["kinds"] or ()),
            row["enabled"],
            row["created_at"],
            row["previous_secret_expires_at"],
            row["secret"] if with_secret else None,
        )


def internal_address(host: str) -> str | None:
    """The loopback, private, link-local or otherwise non-public address `host` is or resolves to, else None.

    A name that does not resolve (yet) passes: it reaches nothing internal as long as it does not."""
    try:
        addresses = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError):
            return None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for address in addresses:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
            return str(address)
    return None


def _check(url: str, kinds: tuple[str, ...], *, allow_private: bool) -> None:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host, parts = None, None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise DomainError(reasons.VALIDATION_ERROR, detail="url must be an http(s) URL", details={"field": "url"})
    internal = None if allow_private else internal_address(host)
    if internal is not None:
        raise DomainError(reasons.WEBHOOK_ADDRESS_REFUSED, address=internal, details={"field": "url"})
    unknown = [k for k in kinds if k not in {a.value for a in AlertKind}]
    if unknown:
        raise DomainError(
            reasons.VALIDATION_ERROR, detail=f"unknown alert kinds: {', '.join(unknown)}", details={"field": "kinds"}
        )


def create_endpoint(fb: Farebox, actor: Principal, *, url: str, kinds: tuple[str, ...] = ()) -> WebhookEndpoint:
    """Add an endpoint (every alert kind when `kinds` is empty); its secret is returned this once."""
    require_operator(actor)
    _check(url, tuple(kinds), allow_private=fb.settings.webhook_allow_private)
    row: dict[str, Any] = {
        "id": new_id("whe"),
        "url": url,
        "secret": webhooks.new_secret(),
        "kinds": list(kinds),
        "enabled": True,
        "created_at": fb.clock.now(),
    }
    with fb.uow() as uow:
        repo.insert_endpoint(uow.conn, **row)
        stored = repo.get_endpoint(uow.conn, row["id"])
        uow.commit()
    assert stored is not None
    return WebhookEndpoint.of(stored, with_secret=True)


def list_endpoints(fb: Farebox, actor: Principal) -> list[WebhookEndpoint]:
    require_operator(actor)
    with fb.uow(readonly=True) as uow:
        return [WebhookEndpoint.of(r) for r in repo.list_endpoints(uow.conn)]


def rotate_secret(
    fb: Farebox, actor: Principal, endpoint_id: str, *, grace: timedelta = ROTATION_GRACE
) -> WebhookEndpoint:
    """A new secret at once; the old one still signs (beside it) until `grace` has passed."""
    require_operator(actor)
    now = fb.clock.now()
    with fb.uow() as uow:
        current = repo.get_endpoint(uow.conn, endpoint_id)
        if current is None:
            raise DomainError(reasons.NOT_FOUND, what="Webhook endpoint")
        repo.update_endpoint(
            uow.conn,
            endpoint_id,
            secret=webhooks.new_secret(),
            previous_secret=current["secret"],
            previous_secret_expires_at=now + grace,
        )
        stored = repo.get_endpoint(uow.conn, endpoint_id)
        uow.commit()
    assert stored is not None
    return WebhookEndpoint.of(stored, with_secret=True)


def delete_endpoint(fb: Farebox, actor: Principal, endpoint_id: str) -> None:
    require_operator(actor)
    with fb.uow() as uow:
        if not repo.delete_endpoint(uow.conn, endpoint_id):
            raise DomainError(reasons.NOT_FOUND, what="Webhook endpoint")
        uow.commit()
