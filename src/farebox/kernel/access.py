"""Who may do what (G6).  Enforced by the service layer, not only by the UI."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from farebox.kernel import reasons
from farebox.kernel.reasons import DomainError


class Role(StrEnum):
    OPERATOR = "operator"
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


MEMBER_ROLES = (Role.OWNER, Role.ADMIN, Role.MEMBER)
BILLING_ROLES = frozenset({Role.OPERATOR, Role.OWNER, Role.ADMIN})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the operator, or a tenant's owner, admin or member."""

    role: Role
    tenant_id: str | None = None  # None for the operator
    key_id: str | None = None
    email: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR

    def label(self) -> str:
        who = self.email or self.key_id or "unknown"
        return f"{self.role.value}:{who}"


SYSTEM = Principal(Role.OPERATOR, key_id="system")


def require_operator(actor: Principal) -> None:
    if not actor.is_operator:
        raise DomainError(reasons.FORBIDDEN)


def require_tenant_access(actor: Principal, tenant_id: str) -> None:
    """Any member of the tenant (or the operator).  Another tenant's caller
    gets not_found, so it cannot even learn the tenant exists (G6)."""
    if actor.is_operator:
        return
    if actor.tenant_id != tenant_id:
        raise DomainError(reasons.NOT_FOUND, what="Tenant")


def require_billing_access(actor: Principal, tenant_id: str) -> None:
    """Only owners and admins see or manage billing (G6)."""
    require_tenant_access(actor, tenant_id)
    if actor.role not in BILLING_ROLES:
        raise DomainError(reasons.FORBIDDEN)
