"""Keyword-only factories for tests."""

from __future__ import annotations

from farebox.bootstrap import Farebox
from farebox.kernel.access import SYSTEM, Principal, Role
from farebox.payments import service as payments
from farebox.subscriptions.services import subscriptions
from farebox.tenants.services import tenants

GOOD_CARD = "4242424242424242"  # the sandbox's card that always succeeds


def make_tenant(
    fb: Farebox,
    *,
    tenant_id: str = "acme",
    catalog: str | None = None,
    plan: str | None = None,
    card: str | None = GOOD_CARD,
) -> str:
    """A tenant with an owner and (by default) a good sandbox card, subscribed when a plan is given."""
    tenants.create_tenant(
        fb, SYSTEM, tenant_id=tenant_id, name=tenant_id.title(), owner_email=f"owner@{tenant_id}.test"
    )
    if card:
        payments.add_payment_method(fb, SYSTEM, tenant_id, token=card)
    if catalog and plan:
        subscriptions.subscribe(fb, SYSTEM, tenant_id, catalog=catalog, plan=plan, cause="test")
    return tenant_id


def principal(*, tenant_id: str, role: Role) -> Principal:
    return Principal(role, tenant_id=tenant_id, key_id=f"test-{role.value}")


def clear_outbox(fb, tenant_id):
    """Forget the set-up's alerts (the first invoice's), so a test sees only what it causes."""
    from sqlalchemy import delete

    from farebox.storage.tables.alerts import deliveries, delivery_attempts
    from farebox.storage.tables.alerts import notifications as notifications_table

    with fb.uow() as uow:
        for table in (delivery_attempts, deliveries, notifications_table):
            uow.conn.execute(delete(table).where(table.c.tenant_id == tenant_id))
        uow.commit()


def usage_recorded(sub, before: int, after: int, *, meter: str = "sessions", included: int | None = None,
                   limit: int | None = None, period_start=None) -> dict:
    """The payload of `usage.recorded` as metering/services/admission.py publishes it (T6: tests that publish it by hand
    send the same keys and types; tests/integration/test_alerts.py compares it with the real one)."""
    return {
        "meter": meter, "before": before, "after": after, "included": included,
        "limit": included if limit is None else limit, "trial": sub.status.value == "trialing",
        "period_start": period_start or sub.period.start, "period_end": sub.period.end,
    }
