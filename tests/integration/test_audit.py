"""The audit log (issue 9, G3, G6): who changed what, readable by the operator and the tenant's owners/admins only."""

import pytest

from farebox.catalog import service as catalog
from farebox.clocks import service as clocks
from farebox.kernel.access import SYSTEM, Principal, Role
from farebox.kernel.reasons import DomainError
from farebox.records.services import audit
from farebox.tenants.services import tenants


def _tenant(fb, tenant_id="acme"):
    return tenants.create_tenant(fb, SYSTEM, tenant_id=tenant_id, name=tenant_id, owner_email=f"o@{tenant_id}.test")


def test_changes_to_tenants_members_keys_and_clocks_are_recorded_with_who_and_what(fb):
    _tenant(fb)
    owner = Principal(Role.OWNER, tenant_id="acme", email="o@acme.test")
    tenants.add_member(fb, owner, "acme", email="m@acme.test", role=Role.MEMBER)
    key = tenants.issue_api_key(fb, owner, tenant_id="acme", role=Role.ADMIN, name="ci")
    tenants.revoke_api_key(fb, owner, key.key_id)
    clock = clocks.create(fb, SYSTEM, name="c")
    clocks.attach(fb, SYSTEM, clock["id"], "acme")

    rows = list(reversed(audit.entries(fb, owner, tenant_id="acme")))
    assert [r["kind"] for r in rows] == [
        "tenant.created",
        "member.added",
        "api_key.issued",
        "api_key.revoked",
        "tenant.clock_attached",
    ]
    assert rows[1]["actor"] == "owner:o@acme.test" and rows[1]["data"]["after"] == {
        "email": "m@acme.test",
        "role": "member",
    }
    assert rows[3]["data"] == {"before": {"role": "admin"}, "after": {"revoked": True}}
    assert rows[4]["data"]["before"] == {"test_clock_id": None} and rows[4]["data"]["after"] == {
        "test_clock_id": clock["id"]
    }


def test_catalog_changes_are_operator_wide_and_only_when_something_changed(fb):
    # the fixture loaded the bundled catalogs once; loading again changes nothing
    first = audit.entries(fb, SYSTEM, kind_prefix="catalog.")
    assert first and all(r["tenant_id"] == "" for r in first)
    catalog.load_bundled(fb, SYSTEM, "session-caps")
    assert len(audit.entries(fb, SYSTEM, kind_prefix="catalog.")) == len(first)


def test_G6_only_the_operator_and_the_tenants_owners_and_admins_read_it(fb):
    _tenant(fb)
    _tenant(fb, "other")
    with pytest.raises(DomainError) as e:
        audit.entries(fb, Principal(Role.MEMBER, tenant_id="acme"), tenant_id="acme")
    assert e.value.code == "forbidden"
    with pytest.raises(DomainError) as e:
        audit.entries(fb, Principal(Role.OWNER, tenant_id="other"), tenant_id="acme")
    assert e.value.code == "not_found"
    with pytest.raises(DomainError) as e:
        audit.entries(fb, Principal(Role.OWNER, tenant_id="acme"))
    assert e.value.code == "forbidden"
    assert [r["tenant_id"] for r in audit.entries(fb, Principal(Role.ADMIN, tenant_id="acme"), tenant_id="acme")] == [
        "acme"
    ]


def test_a_change_that_fails_leaves_no_audit_row(fb):
    _tenant(fb)
    before = len(audit.entries(fb, SYSTEM, tenant_id="acme"))
    with pytest.raises(DomainError):
        tenants.add_member(fb, SYSTEM, "acme", email="o@acme.test", role=Role.MEMBER)  # exists already
    assert len(audit.entries(fb, SYSTEM, tenant_id="acme")) == before


def test_D5_payment_methods_voids_and_owner_subscription_changes_name_the_real_actor(fb):
    """newuser.md D5: a card added, an invoice voided and every subscription change an owner asks for
    are in the audit log under that owner (or the operator), never `system`."""
    from farebox.invoicing.services import invoices
    from farebox.payments import service as payments
    from farebox.subscriptions.services import subscriptions

    from factories import GOOD_CARD

    _tenant(fb)
    owner = Principal(Role.OWNER, tenant_id="acme", key_id="fbk_owner1")
    payments.add_payment_method(fb, owner, "acme", token=GOOD_CARD)
    subscriptions.subscribe(fb, owner, "acme", catalog="session-caps", plan="free")
    subscriptions.change_plan(fb, owner, "acme", plan="pro")                           # an upgrade: at once
    subscriptions.change_plan(fb, owner, "acme", plan="free")                          # a downgrade: scheduled
    subscriptions.cancel_scheduled_change(fb, owner, "acme")
    rows = {r["kind"]: r for r in audit.entries(fb, SYSTEM, tenant_id="acme")}
    added = rows["payment_method.added"]
    assert added["actor"] == "owner:fbk_owner1" and added["data"]["after"]["last4"] == GOOD_CARD[-4:]
    for kind in ("subscription.started", "subscription.plan_changed", "subscription.plan_change_scheduled",
                 "subscription.plan_change_canceled"):
        assert rows[kind]["actor"] == "owner:fbk_owner1", (kind, rows[kind]["actor"])

    _tenant(fb, "trial")
    trial_owner = Principal(Role.OWNER, tenant_id="trial", key_id="fbk_owner2")
    subscriptions.subscribe(fb, trial_owner, "trial", catalog="agent-sessions", plan="sme", trial=True)
    trial_rows = {r["kind"]: r for r in audit.entries(fb, SYSTEM, tenant_id="trial")}
    assert trial_rows["subscription.trial_started"]["actor"] == "owner:fbk_owner2"

    _tenant(fb, "voids")
    from farebox.payments.providers.sandbox import FAILS_LATER

    payments.add_payment_method(fb, SYSTEM, "voids", token=FAILS_LATER)  # the charge fails: the invoice stays open
    subscriptions.subscribe(fb, SYSTEM, "voids", catalog="session-caps", plan="pro")
    unpaid = [i for i in invoices.list_invoices(fb, SYSTEM, "voids") if i.status == "open"][0]
    operator = Principal(Role.OPERATOR, key_id="fbk_op")
    invoices.void_invoice(fb, operator, "voids", unpaid.id, reason="paid by bank transfer")
    voided = [r for r in audit.entries(fb, SYSTEM, tenant_id="voids") if r["kind"] == "invoice.voided"]
    assert len(voided) == 1 and voided[0]["actor"] == "operator:fbk_op" and voided[0]["subject"] == unpaid.id
    data = voided[0]["data"]
    assert (data["before"], data["after"]) == ({"status": "open"}, {"status": "void", "number": unpaid.number})
    assert data["reason"] == "paid by bank transfer"  # who and why (audit #6)


def test_D5_removals_and_refunds_are_audited_kinds():
    kinds = ("payment_method.added", "payment_method.removed", "invoice.voided", "invoice.refunded", "api_key.revoked")
    for kind in kinds:
        assert audit.is_audited(kind), kind


def test_D20_the_operator_log_is_in_recording_order_whatever_a_tenants_test_clock_says(fb):
    from datetime import timedelta

    _tenant(fb, "future")
    clock = clocks.create(fb, SYSTEM, name="ahead", start=fb.clock.now() + timedelta(days=400))
    clocks.attach(fb, SYSTEM, clock["id"], "future")
    from farebox.subscriptions.services import subscriptions

    subscriptions.subscribe(fb, SYSTEM, "future", catalog="session-caps", plan="free")  # dated 400 days ahead
    assert audit.entries(fb, SYSTEM, tenant_id="future")[0]["at"] > fb.clock.now() + timedelta(days=399)
    _tenant(fb, "today")  # recorded last, dated today
    newest = audit.entries(fb, SYSTEM, limit=1)[0]
    assert (newest["tenant_id"], newest["kind"]) == ("today", "tenant.created")
