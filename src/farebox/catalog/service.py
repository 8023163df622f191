"""Loading catalogs into storage, with plan versions (a subscribed version never changes)."""

from __future__ import annotations

from dataclasses import dataclass, field

from farebox.bootstrap import Farebox
from farebox.catalog import db as repo
from farebox.catalog.domain import Catalog, Plan
from farebox.catalog.files import (
    BUNDLED,
    load_catalog,
    load_catalog_text,
    plan_document,
    plan_fingerprint,
    plan_from_document,
)
from farebox.kernel import reasons
from farebox.kernel.access import Principal, require_operator
from farebox.kernel.reasons import DomainError
from farebox.records.services import audit


@dataclass
class LoadReport:
    catalog: str
    added: list[str] = field(default_factory=list)  # "code v2"
    unchanged: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)


def load(fb: Farebox, actor: Principal, name_or_path: str) -> LoadReport:
    """Load (or reload) a bundled catalog or a catalog file; a plan whose
    content changed gets a new version."""
    require_operator(actor)
    return _store(fb, actor, *load_catalog(name_or_path))


def load_bundled(fb: Farebox, actor: Principal, name: str) -> LoadReport:
    """Load one of the catalogs shipped with farebox, by name."""
    require_operator(actor)
    if name not in BUNDLED:
        raise DomainError(reasons.CATALOG_NOT_FOUND, catalog=name, details={"bundled": list(BUNDLED)})
    return _store(fb, actor, *load_catalog(name))


def load_document(fb: Farebox, actor: Principal, text: str) -> LoadReport:
    """Load a catalog sent as YAML text (the API never reads server paths)."""
    require_operator(actor)
    return _store(fb, actor, *load_catalog_text(text, source="request body"))


def _store(fb: Farebox, actor: Principal, catalog: Catalog, document: dict) -> LoadReport:
    now = fb.clock.now()
    report = LoadReport(catalog.name)
    with fb.uow() as uow:
        repo.upsert_catalog(
            uow.conn, name=catalog.name, title=catalog.title, currency=catalog.currency, document=document, now=now
        )
        for code in catalog.plans:
            doc = plan_document(document, code)
            fingerprint = plan_fingerprint(doc)
            current = repo.current_plan_version(uow.conn, catalog.name, code)
            if current is not None and current["fingerprint"] == fingerprint:
                report.unchanged.append(f"{code} v{current['version']}")
                continue
            repo.add_plan_version(
                uow.conn, catalog=catalog.name, code=code, fingerprint=fingerprint, document=doc, now=now
            )
            version = 1 if current is None else current["version"] + 1
            report.added.append(f"{code} v{version}")
        before = {row["code"] for row in repo.current_plans(uow.conn, catalog.name)}
        repo.retire_plans(uow.conn, catalog.name, keep=set(catalog.plans))
        report.retired = sorted(before - set(catalog.plans))
        if report.added or report.retired:
            audit.publish(
                uow,
                "catalog.loaded",
                tenant_id=None,
                at=now,
                actor=actor,
                subject=catalog.name,
                added=report.added,
                retired=report.retired,
                unchanged=report.unchanged,
            )
        uow.commit()
    return report


@dataclass(frozen=True)
class OfferedPlan:
    version_id: int
    version: int
    catalog: str
    plan: Plan


def offered_plan(uow_conn, catalog: str, code: str) -> OfferedPlan:
    """The current version of a plan, as offered to new subscribers."""
    if repo.get_catalog(uow_conn, catalog) is None:
        raise DomainError(reasons.CATALOG_NOT_FOUND, catalog=catalog)
    row = repo.current_plan_version(uow_conn, catalog, code)
    if row is None:
        raise DomainError(reasons.PLAN_NOT_FOUND, plan=code, catalog=catalog)
    return OfferedPlan(
        row["id"], row["version"], catalog, plan_from_document(row["document"], catalog=catalog, code=code)
    )


def list_catalogs(fb: Farebox) -> list[dict]:
    with fb.uow(readonly=True) as uow:
        return [
            {
                "name": c["name"],
                "title": c["title"],
                "currency": c["currency"],
                "plans": [
                    {"code": p["code"], "version": p["version"], "version_id": p["id"], "document": p["document"]}
                    for p in repo.current_plans(uow.conn, c["name"])
                ],
            }
            for c in repo.list_catalogs(uow.conn)
        ]


def offered_plans(fb: Farebox, catalog: str) -> list[Plan]:
    """Every plan a catalog offers now (its current versions), in tier order; none for an unknown catalog."""
    with fb.uow(readonly=True) as uow:
        rows = repo.current_plans(uow.conn, catalog)
    plans = [plan_from_document(r["document"], catalog=catalog, code=r["code"]) for r in rows]
    return sorted(plans, key=lambda p: (p.tier, p.code))
