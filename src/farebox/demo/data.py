"""The bundled demo data: the three catalogs and a demo tenant of each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from farebox.bootstrap import Farebox
from farebox.catalog import service as catalog
from farebox.catalog.files import BUNDLED
from farebox.kernel.access import SYSTEM, Role
from farebox.payments import service as payments
from farebox.subscriptions.services import subscriptions
from farebox.tenants.db import tenants as tenants_repo
from farebox.tenants.services import tenants

DEMO_TENANTS = (
    # tenant id, name, catalog, plan
    ("demo-webinars", "Demo Webinars Inc.", "session-caps", "pro"),
    ("demo-events", "Demo Events GmbH", "attendee-credits", "pro"),
    ("demo-agents", "Demo Agents SAS", "agent-sessions", "sme"),
)


@dataclass
class DemoTenant:
    tenant_id: str
    catalog: str
    plan: str
    created: bool
    owner_key: str | None  # shown once, when the tenant is created


def load_catalogs(fb: Farebox) -> list[catalog.LoadReport]:
    return [catalog.load(fb, SYSTEM, name) for name in BUNDLED]


def ensure_operator_key(fb: Farebox, path: Path) -> tuple[str, bool]:
    """The demo's operator key, kept in `path` (under ./var, never committed).
    Returns (key, created)."""
    if path.exists():
        key = path.read_text().strip()
        if tenants.authenticate(fb, key) is not None:
            return key, False
    issued = tenants.issue_api_key(fb, SYSTEM, tenant_id=None, role=Role.OPERATOR, name="demo operator key")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(issued.secret + "\n")
    path.chmod(0o600)
    return issued.secret, True


def load_demo(fb: Farebox) -> list[DemoTenant]:
    """Create the demo tenants that do not exist yet (safe to run again)."""
    out = []
    for tenant_id, name, catalog_name, plan in DEMO_TENANTS:
        with fb.uow(readonly=True) as uow:
            exists = tenants_repo.get_tenant(uow.conn, tenant_id) is not None
        if exists:
            out.append(DemoTenant(tenant_id, catalog_name, plan, False, None))
            continue
        tenants.create_tenant(
            fb,
            SYSTEM,
            tenant_id=tenant_id,
            name=name,
            owner_email=f"owner@{tenant_id}.example",
            owner_name="Demo Owner",
        )
        tenants.add_member(
            fb, SYSTEM, tenant_id, email=f"admin@{tenant_id}.example", name="Demo Admin", role=Role.ADMIN
        )
        tenants.add_member(
            fb, SYSTEM, tenant_id, email=f"member@{tenant_id}.example", name="Demo Member", role=Role.MEMBER
        )
        payments.add_payment_method(
            fb, SYSTEM, tenant_id, token="pm_card_visa"
        )  # a paid plan needs a payment method on file; test mode only
        subscriptions.subscribe(fb, SYSTEM, tenant_id, catalog=catalog_name, plan=plan, cause="demo")
        key = tenants.issue_api_key(fb, SYSTEM, tenant_id=tenant_id, role=Role.OWNER, name="demo owner key")
        out.append(DemoTenant(tenant_id, catalog_name, plan, True, key.secret))
    return out
