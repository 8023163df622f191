"""Tenants, members, API keys and roles (G6)."""

import pytest

from farebox.kernel.access import SYSTEM, Role
from farebox.kernel.reasons import DomainError
from farebox.subscriptions.services import subscriptions
from farebox.tenants.services import tenants

from factories import make_tenant, principal


def test_tenant_is_created_with_its_owner(fb):
    make_tenant(fb, tenant_id="acme")
    members = tenants.list_members(fb, SYSTEM, "acme")
    assert [(m["email"], m["role"]) for m in members] == [("owner@acme.test", "owner")]


def test_duplicate_tenant_and_member_are_refused(fb):
    make_tenant(fb, tenant_id="acme")
    with pytest.raises(DomainError) as info:
        make_tenant(fb, tenant_id="acme")
    assert info.value.code == "tenant_exists"
    with pytest.raises(DomainError) as info:
        tenants.add_member(fb, SYSTEM, "acme", email="owner@acme.test", role=Role.ADMIN)
    assert info.value.code == "member_exists"


def test_api_keys_are_stored_hashed_and_authenticate(fb):
    make_tenant(fb, tenant_id="acme")
    issued = tenants.issue_api_key(fb, SYSTEM, tenant_id="acme", role=Role.ADMIN)
    caller = tenants.authenticate(fb, issued.secret)
    assert caller.role is Role.ADMIN and caller.tenant_id == "acme"
    key_id, _, secret = issued.secret.partition(".")
    from farebox.tenants.db.tenants import get_api_key

    with fb.uow(readonly=True) as uow:
        assert secret not in str(get_api_key(uow.conn, key_id))
    assert tenants.authenticate(fb, key_id + ".wrong") is None
    assert tenants.authenticate(fb, "nonsense") is None
    tenants.revoke_api_key(fb, SYSTEM, key_id)
    assert tenants.authenticate(fb, issued.secret) is None


def test_G6_member_cannot_see_billing_and_other_tenants_see_nothing(fb):
    make_tenant(fb, tenant_id="acme", catalog="attendee-credits", plan="pro")
    make_tenant(fb, tenant_id="globex")
    member = principal(tenant_id="acme", role=Role.MEMBER)
    with pytest.raises(DomainError) as info:
        subscriptions.current(fb, member, "acme")
    assert info.value.code == "forbidden"
    admin = principal(tenant_id="acme", role=Role.ADMIN)
    assert subscriptions.current(fb, admin, "acme").plan.code == "pro"
    outsider = principal(tenant_id="globex", role=Role.OWNER)
    for call in (lambda: subscriptions.current(fb, outsider, "acme"), lambda: tenants.get_tenant(fb, outsider, "acme")):
        with pytest.raises(DomainError) as info:
            call()
        assert info.value.code == "not_found"


def test_G6_only_owners_make_owners_and_members_cannot_issue_keys(fb):
    make_tenant(fb, tenant_id="acme")
    admin = principal(tenant_id="acme", role=Role.ADMIN)
    with pytest.raises(DomainError):
        tenants.add_member(fb, admin, "acme", email="boss@acme.test", role=Role.OWNER)
    tenants.add_member(fb, admin, "acme", email="helper@acme.test", role=Role.MEMBER)
    member = principal(tenant_id="acme", role=Role.MEMBER)
    with pytest.raises(DomainError) as info:
        tenants.issue_api_key(fb, member, tenant_id="acme", role=Role.MEMBER)
    assert info.value.code == "forbidden"
    with pytest.raises(DomainError):
        tenants.issue_api_key(fb, admin, tenant_id=None, role=Role.OPERATOR)
