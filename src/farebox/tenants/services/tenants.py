"""Tenants, members and API keys (G6)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import EllipsisType
from typing import Any

from sqlalchemy import Engine

from farebox.bootstrap import Farebox
from farebox.kernel import reasons
from farebox.kernel.access import (
    MEMBER_ROLES,
    Principal,
    Role,
    require_billing_access,
    require_operator,
    require_tenant_access,
)
from farebox.kernel.reasons import DomainError
from farebox.records.services import audit
from farebox.storage.ids import new_id
from farebox.tenants.db import sign_in as portal_repo
from farebox.tenants.db import tenants as repo

AUTH_CACHE_SECONDS = 1.0  # a key revoked elsewhere (another process) stops working within this time
_AUTH_CACHE_MAX = 10_000
# per engine: key hash -> (monotonic deadline, principal, the key's expiry)
_auth_cache: weakref.WeakKeyDictionary[Engine, dict[str, tuple[float, Principal, datetime | None]]] = (
    weakref.WeakKeyDictionary()
)

TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_tenant(
    fb: Farebox, actor: Principal, *, tenant_id: str | None, name: str, owner_email: str, owner_name: str = ""
) -> dict[str, Any]:
    """A tenant with its first owner."""
    require_operator(actor)
    tenant_id = tenant_id or new_id("ten")
    if not TENANT_ID.match(tenant_id):
        raise DomainError(
            reasons.VALIDATION_ERROR,
            detail="tenant id: lowercase letters, digits, - and _, at most 63",
            details={"field": "id"},
        )
    if not EMAIL.match(owner_email):
        raise DomainError(
            reasons.VALIDATION_ERROR,
            detail=f"owner_email {owner_email!r} is not an e-mail address",
            details={"field": "owner_email"},
        )
    now = fb.clock.now()
    with fb.uow() as uow:
        if repo.get_tenant(uow.conn, tenant_id) is not None:
            raise DomainError(reasons.TENANT_EXISTS, tenant=tenant_id)
        repo.insert_tenant(uow.conn, id=tenant_id, name=name, created_at=now, tax_rate_bp=0)
        repo.insert_member(
            uow.conn,
            tenant_id=tenant_id,
            id=new_id("mem"),
            email=owner_email,
            name=owner_name or owner_email,
            role=Role.OWNER.value,
            created_at=now,
        )
        audit.publish(
            uow,
            "tenant.created",
            tenant_id=tenant_id,
            at=now,
            actor=actor,
            subject=tenant_id,
            after={"name": name, "owner_email": owner_email},
        )
        uow.commit()
    return get_tenant(fb, actor, tenant_id)


def get_tenant(fb: Farebox, actor: Principal, tenant_id: str) -> dict[str, Any]:
    require_tenant_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        tenant = repo.get_tenant(uow.conn, tenant_id)
        if tenant is None:
            raise DomainError(reasons.NOT_FOUND, what="Tenant")
        return tenant


def list_tenants(fb: Farebox, actor: Principal, *, search: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    require_operator(actor)
    with fb.uow(readonly=True) as uow:
        return repo.list_tenants(uow.conn, search=search, limit=limit)


def add_member(
    fb: Farebox, actor: Principal, tenant_id: str, *, email: str, name: str = "", role: Role
) -> dict[str, Any]:
    """Owners and admins manage their team; the operator may too."""
    require_billing_access(actor, tenant_id)
    if role not in MEMBER_ROLES:
        raise DomainError(
            reasons.VALIDATION_ERROR,
            detail=f"role must be one of {', '.join(r.value for r in MEMBER_ROLES)}",
            details={"field": "role"},
        )
    if role is Role.OWNER and actor.role not in (Role.OPERATOR, Role.OWNER):
        raise DomainError(reasons.FORBIDDEN)
    if not EMAIL.match(email):
        raise DomainError(
            reasons.VALIDATION_ERROR, detail=f"email {email!r} is not an e-mail address", details={"field": "email"}
        )
    with fb.uow() as uow:
        if repo.get_tenant(uow.conn, tenant_id) is None:
            raise DomainError(reasons.NOT_FOUND, what="Tenant")
        if repo.get_member_by_email(uow.conn, tenant_id, email) is not None:
            raise DomainError(reasons.MEMBER_EXISTS, email=email)
        member: dict[str, Any] = {
            "tenant_id": tenant_id,
            "id": new_id("mem"),
            "email": email,
            "name": name or email,
            "role": role.value,
            "created_at": fb.clock.now(),
        }
        repo.insert_member(uow.conn, **member)
        audit.publish(
            uow,
            "member.added",
            tenant_id=tenant_id,
            at=member["created_at"],
            actor=actor,
            subject=member["id"],
            after={"email": email, "role": role.value},
        )
        uow.commit()
    return member


def list_members(fb: Farebox, actor: Principal, tenant_id: str) -> list[dict[str, Any]]:
    require_tenant_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        return repo.list_members(uow.conn, tenant_id)


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    secret: str  # shown once; only its hash is stored
    role: Role
    tenant_id: str | None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as listed: never its secret."""

    key_id: str
    tenant_id: str | None
    role: Role
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    active: bool

    @classmethod
    def of(cls, row: dict[str, Any], now: datetime) -> ApiKey:
        active = row["revoked_at"] is None and (row["expires_at"] is None or row["expires_at"] > now)
        return cls(
            row["id"],
            row["tenant_id"],
            Role(row["role"]),
            row["name"],
            row["created_at"],
            row["expires_at"],
            row["revoked_at"],
            active,
        )


MAX_ROTATION_GRACE = timedelta(days=7)


def _require_key_access(actor: Principal, tenant_id: str | None) -> None:
    if tenant_id is None:
        require_operator(actor)
    else:
        require_billing_access(actor, tenant_id)


def issue_api_key(
    fb: Farebox,
    actor: Principal,
    *,
    tenant_id: str | None,
    role: Role,
    name: str = "",
    expires_at: datetime | None = None,
) -> IssuedKey:
    """An operator key (tenant_id None) or a tenant key with a role; refused from `expires_at` on, if given."""
    if tenant_id is None:
        require_operator(actor)
        if role is not Role.OPERATOR:
            raise DomainError(
                reasons.VALIDATION_ERROR, detail="a key without a tenant is an operator key", details={"field": "role"}
            )
    else:
        require_billing_access(actor, tenant_id)
        if role not in MEMBER_ROLES:
            raise DomainError(
                reasons.VALIDATION_ERROR,
                detail="a tenant key has the role owner, admin or member",
                details={"field": "role"},
            )
        if role is Role.OWNER and actor.role not in (Role.OPERATOR, Role.OWNER):
            raise DomainError(reasons.FORBIDDEN)
    now = fb.clock.now()
    if expires_at is not None and expires_at <= now:
        raise DomainError(
            reasons.EXPIRY_IN_PAST, now=now.isoformat(timespec="seconds"), details={"field": "expires_at"}
        )
    key_id = new_id("fbk")
    secret = secrets.token_urlsafe(24)
    with fb.uow() as uow:
        if tenant_id is not None and repo.get_tenant(uow.conn, tenant_id) is None:
            raise DomainError(reasons.NOT_FOUND, what="Tenant")
        repo.insert_api_key(
            uow.conn,
            id=key_id,
            secret_hash=_hash(secret),
            tenant_id=tenant_id,
            role=role.value,
            name=name,
            created_at=now,
            expires_at=expires_at,
        )
        after = {"role": role.value, "name": name, "expires_at": expires_at.isoformat() if expires_at else None}
        audit.publish(uow, "api_key.issued", tenant_id=tenant_id, at=now, actor=actor, subject=key_id, after=after)
        uow.commit()
    return IssuedKey(key_id, f"{key_id}.{secret}", role, tenant_id, expires_at)


def list_api_keys(fb: Farebox, actor: Principal, *, tenant_id: str | None) -> list[ApiKey]:
    """The tenant's keys (owners, admins, the operator), or the operator keys (operator)."""
    _require_key_access(actor, tenant_id)
    now = fb.clock.now()
    with fb.uow(readonly=True) as uow:
        if tenant_id is not None and repo.get_tenant(uow.conn, tenant_id) is None:
            raise DomainError(reasons.NOT_FOUND, what="Tenant")
        return [ApiKey.of(row, now) for row in repo.list_api_keys(uow.conn, tenant_id)]


def _key_for_change(uow: Any, actor: Principal, key_id: str, tenant_id: str | None | EllipsisType) -> dict[str, Any]:
    """The key, if `actor` manages it and it is the one the path names (another tenant's: not found).

    `tenant_id` is the tenant the caller names (None: an operator key); `...`: the key's own (CLI)."""
    key = repo.get_api_key(uow.conn, key_id)
    if tenant_id is ...:
        if key is None:
            raise DomainError(reasons.NOT_FOUND, what="API key")
        tenant_id = key["tenant_id"]
    assert not isinstance(tenant_id, EllipsisType)
    if key is None or key["tenant_id"] != tenant_id:
        _require_key_access(actor, tenant_id)
        raise DomainError(reasons.NOT_FOUND, what="API key")
    _require_key_access(actor, tenant_id)
    return key


def revoke_api_key(fb: Farebox, actor: Principal, key_id: str, *, tenant_id: str | None | EllipsisType = ...) -> ApiKey:
    """Refused at once everywhere; portal sessions opened with the key end with it."""
    now = fb.clock.now()
    with fb.uow() as uow:
        key = _key_for_change(uow, actor, key_id, tenant_id)
        if key["revoked_at"] is None:
            repo.revoke_api_key(uow.conn, key_id, now)
            portal_repo.delete_sessions_of_key(uow.conn, key_id)
            _auth_cache.pop(fb.engine, None)  # this process at once; the others within AUTH_CACHE_SECONDS
            audit.publish(uow, "api_key.revoked", tenant_id=key["tenant_id"], at=now, actor=actor, subject=key_id,
                          before={"role": key["role"]}, after={"revoked": True})
        row = repo.get_api_key(uow.conn, key_id)
        uow.commit()
    assert row is not None
    return ApiKey.of(row, now)


def rotate_api_key(
    fb: Farebox,
    actor: Principal,
    key_id: str,
    *,
    tenant_id: str | None | EllipsisType = ...,
    grace: timedelta = timedelta(0),
) -> IssuedKey:
    """A new key with the same tenant, role and name; the old one stops at once, or after `grace` (at most 7 days)."""
    if grace < timedelta(0) or grace > MAX_ROTATION_GRACE:
        raise DomainError(
            reasons.VALIDATION_ERROR, detail="the grace is between 0 and 7 days", details={"field": "grace_seconds"}
        )
    now = fb.clock.now()
    with fb.uow() as uow:
        uow.ambient()
        old = _key_for_change(uow, actor, key_id, tenant_id)
        if old["revoked_at"] is not None or (old["expires_at"] is not None and old["expires_at"] <= now):
            raise DomainError(reasons.API_KEY_INACTIVE)
        issued = issue_api_key(fb, actor, tenant_id=old["tenant_id"], role=Role(old["role"]), name=old["name"])
        if grace:
            ends = now + grace
            if old["expires_at"] is None or old["expires_at"] > ends:
                repo.update_api_key(uow.conn, key_id, expires_at=ends)
                _auth_cache.pop(fb.engine, None)
        else:
            repo.revoke_api_key(uow.conn, key_id, now)
            portal_repo.delete_sessions_of_key(uow.conn, key_id)
            _auth_cache.pop(fb.engine, None)
        audit.publish(
            uow,
            "api_key.rotated",
            tenant_id=old["tenant_id"],
            at=now,
            actor=actor,
            subject=key_id,
            before={"role": old["role"]},
            after={"replaced_by": issued.key_id, "old_key_ends_at": (now + grace).isoformat()},
        )
        uow.commit()
    return issued


def authenticate(fb: Farebox, raw_key: str | None) -> Principal | None:
    """The principal behind an API key, or None for a missing, wrong, revoked or expired key.

    A valid key is remembered for at most AUTH_CACHE_SECONDS per process: a revocation holds at once in
    the process that made it and within that time on every other."""
    known = authenticate_known(fb, raw_key)
    return _authenticate_stored(fb, raw_key or "") if known is UNKNOWN else known


UNKNOWN: Any = object()  # `authenticate_known`: the key must be read from the database


def authenticate_known(fb: Farebox, raw_key: str | None) -> Principal | None | Any:
    """`authenticate` when it needs no database read (the operator key, a malformed key, a key
    remembered within AUTH_CACHE_SECONDS), else `UNKNOWN`: the API answers these without a
    worker thread."""
    if not raw_key:
        return None
    configured = fb.settings.operator_key
    if configured and hmac.compare_digest(raw_key.encode(), configured.encode()):
        return Principal(Role.OPERATOR, key_id="env:FAREBOX_OPERATOR_KEY")
    key_id, _, secret = raw_key.partition(".")
    if not secret:
        return None
    # A valid key is remembered for AUTH_CACHE_SECONDS (by its hash, never the key itself), so the
    # hot path does not open a transaction per request only to read it again.
    cache = _auth_cache.setdefault(fb.engine, {})
    digest = _hash(raw_key)
    hit = cache.get(digest)
    if hit is not None and time.monotonic() < hit[0]:
        if hit[2] is None or hit[2] > fb.clock.now():  # an expiry is checked on the tenant's clock every time
            return hit[1]
        cache.pop(digest, None)
        return None
    return UNKNOWN


def _authenticate_stored(fb: Farebox, raw_key: str) -> Principal | None:
    key_id, _, secret = raw_key.partition(".")
    cache = _auth_cache.setdefault(fb.engine, {})
    digest = _hash(raw_key)
    with fb.uow(readonly=True) as uow:
        key = repo.get_api_key(uow.conn, key_id)
    if key is None or key["revoked_at"] is not None:
        cache.pop(digest, None)
        return None
    if key["expires_at"] is not None and key["expires_at"] <= fb.clock.now():
        return None
    if not hmac.compare_digest(key["secret_hash"], _hash(secret)):
        return None
    principal = Principal(Role(key["role"]), tenant_id=key["tenant_id"], key_id=key_id)
    if len(cache) >= _AUTH_CACHE_MAX:
        cache.clear()
    cache[digest] = (time.monotonic() + AUTH_CACHE_SECONDS, principal, key["expires_at"])
    return principal
