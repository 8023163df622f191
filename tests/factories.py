"""Keyword-only factories for tests."""

from __future__ import annotations

from farebox.bootstrap import Farebox
from farebox.domain.access import SYSTEM, Principal, Role
from farebox.services import subscriptions, tenants


def make_tenant(fb: Farebox, *, tenant_id: str = "acme", catalog: str | None = None, plan: str | None = None) -> str:
    tenants.create_tenant(fb, SYSTEM, tenant_id=tenant_id, name=tenant_id.title(), owner_email=f"owner@{tenant_id}.test")
    if catalog and plan:
        subscriptions.subscribe(fb, SYSTEM, tenant_id, catalog=catalog, plan=plan, cause="test")
    return tenant_id


def principal(*, tenant_id: str, role: Role) -> Principal:
    return Principal(role, tenant_id=tenant_id, key_id=f"test-{role.value}")
