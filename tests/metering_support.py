"""Helpers for metering tests: plan variants with smaller numbers."""

from __future__ import annotations

import yaml
from sqlalchemy import update

from farebox.catalog import service as catalog_service
from farebox.catalog.files import bundled_catalog_text
from farebox.kernel.access import SYSTEM
from farebox.storage.tables.subscriptions import subscriptions
from farebox.subscriptions import db as subs_repo


def shrink(
    fb,
    tenant_id: str,
    meter: str,
    included: int,
    policy: str | None = None,
    others: dict[str, int] | None = None,
    **plan_fields,
) -> None:
    """Point the tenant's subscription at a variant of its plan with another limit (tests only);
    `others` sets the same meter's limit on other plans of the catalog."""
    with fb.uow(readonly=True) as uow:
        sub = subs_repo.current(uow.conn, tenant_id)
    doc = yaml.safe_load(bundled_catalog_text(sub.catalog.split("-small-")[0]))
    doc["name"] = f"{sub.catalog.split('-small-')[0]}-small-{tenant_id}"
    plan = doc["plans"][sub.plan.code]
    plan.update(plan_fields)
    lim = plan["limits"][meter]
    lim["included"] = included
    for code, n in (others or {}).items():
        doc["plans"][code]["limits"][meter]["included"] = n
    if policy:
        lim["policy"] = policy
        if policy != "overage":
            lim.pop("overage_unit_price", None)
    catalog_service.load_document(fb, SYSTEM, yaml.safe_dump(doc, sort_keys=False))  # plan order is tier order
    with fb.uow() as uow:
        offered = catalog_service.offered_plan(uow.conn, doc["name"], sub.plan.code)
        uow.conn.execute(
            update(subscriptions).where(subscriptions.c.id == sub.id).values(plan_version_id=offered.version_id)
        )
        uow.commit()
