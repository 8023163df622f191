"""`farebox reprice`: a tenant's recorded usage replayed under another catalog (L11, docs/repricing.md).

Reads only (one read-only unit of work), operator only.  Tenants are read in
batches; each batch costs one statement per table (subscriptions, ledger,
occurrences, invoice lines), whatever the number of tenants or periods, and
the replay itself is `farebox.repricing.domain.reprice`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from farebox.bootstrap import Farebox
from farebox.catalog.domain import Catalog, MeterKind, Plan
from farebox.catalog.files import BUNDLED, CatalogError, load_catalog, parse_catalog, plan_meters
from farebox.clocks.service import now_for
from farebox.kernel import reasons
from farebox.kernel.access import Principal, require_operator
from farebox.kernel.reasons import DomainError
from farebox.repricing import db as repo
from farebox.repricing.domain import OccurrenceUsage, PaidLine, Repricing, Served, Unit, choose_plan, reprice


@dataclass(frozen=True)
class TenantRepricing:
    tenant_id: str
    from_catalog: str | None  # the tenant's latest subscription's catalog and plan
    from_plan: str | None
    result: Repricing


@dataclass(frozen=True)
class LimitTenant:
    tenant_id: str
    plan: str
    periods: int  # periods with a limit hit
    refused: int  # units refused over all those periods
    first: str  # the first hit, described


@dataclass
class RepriceSummary:
    catalog: str
    tenants: int = 0
    without_history: int = 0  # no served time to replay (never subscribed, or trials only)
    paid: dict[str, int] = field(default_factory=dict)  # currency -> invoiced, tenants compared in the new currency
    would_pay: dict[str, int] = field(default_factory=dict)
    other_currency: int = 0  # tenants invoiced in another currency than the new plan's: not compared
    paying_more: int = 0
    paying_less: int = 0
    hitting_limits: list[LimitTenant] = field(default_factory=list)

    def change(self, currency: str) -> int:
        return self.would_pay.get(currency, 0) - self.paid.get(currency, 0)

    def add(self, item: TenantRepricing) -> None:
        r = item.result
        self.tenants += 1
        if not r.periods:
            self.without_history += 1
            return
        change = r.change_minor
        if change is None:
            self.other_currency += 1
        else:
            self.paid[r.currency] = self.paid.get(r.currency, 0) + r.paid.get(r.currency, 0)
            self.would_pay[r.currency] = self.would_pay.get(r.currency, 0) + r.would_pay_minor
            self.paying_more += change > 0
            self.paying_less += change < 0
        hits = r.hit_periods
        if hits:
            refused = sum(h.refused for p in hits for h in p.hits)
            self.hitting_limits.append(
                LimitTenant(item.tenant_id, r.plan.code, len(hits), refused, hits[0].hits[0].describe())
            )


def new_catalog(conn: Connection, name: str) -> Catalog:
    """A loaded catalog by name, else a bundled catalog or a catalog file not loaded yet (try before you ship)."""
    document = repo.stored_catalog(conn, name)
    if document is None and name not in BUNDLED and not Path(name).is_file():
        raise DomainError(reasons.CATALOG_NOT_FOUND, catalog=name)
    try:
        return parse_catalog(document, source=f"{name} (loaded)") if document is not None else load_catalog(name)[0]
    except CatalogError as exc:
        raise DomainError(reasons.CATALOG_INVALID, detail=str(exc), details={"problems": list(exc.problems)}) from None


def _fixed_plan(catalog: Catalog, code: str | None) -> Plan | None:
    if code is None:
        return None
    if code not in catalog.plans:
        raise DomainError(reasons.PLAN_NOT_FOUND, plan=code, catalog=catalog.name)
    return catalog.plans[code]


def reprice_tenant(
    fb: Farebox,
    actor: Principal,
    tenant_id: str,
    *,
    catalog: str,
    plan: str | None = None,
    since: datetime | None = None,
) -> TenantRepricing:
    """One tenant's history, period by period, under `catalog` (its plan `plan`, or the rule of `choose_plan`)."""
    require_operator(actor)
    with fb.uow(readonly=True) as uow:
        target = new_catalog(uow.conn, catalog)
        fixed = _fixed_plan(target, plan)
        now = now_for(uow, fb.clock, tenant_id)
        return replay_batch(uow.conn, [(tenant_id, now)], target, fixed, since)[0]


def reprice_all(
    fb: Farebox,
    actor: Principal,
    *,
    catalog: str,
    plan: str | None = None,
    since: datetime | None = None,
    batch_size: int = 500,
    on_total: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> RepriceSummary:
    """Every tenant under `catalog`, summed up: revenue change per currency and the tenants that would hit limits."""
    require_operator(actor)
    with fb.uow(readonly=True) as uow:
        conn = uow.conn
        target = new_catalog(conn, catalog)
        fixed = _fixed_plan(target, plan)
        if on_total is not None:
            on_total(repo.count_tenants(conn))
        summary = RepriceSummary(target.name)
        after: str | None = None
        while batch := repo.tenant_batch(conn, after=after, limit=batch_size):
            real_now = fb.clock.now()
            for item in replay_batch(conn, [(t["id"], t["now_at"] or real_now) for t in batch], target, fixed, since):
                summary.add(item)
            if on_progress is not None:
                on_progress(len(batch))
            after = batch[-1]["id"]
    return summary


def _by_tenant(rows: Iterable[Any]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[row[0] if isinstance(row, tuple) else row["tenant_id"]].append(row)
    return grouped


def replay_batch(
    conn: Connection,
    batch: Sequence[tuple[str, datetime]],
    catalog: Catalog,
    fixed: Plan | None,
    since: datetime | None,
) -> list[TenantRepricing]:
    """Replay a batch of (tenant, now): five set-based reads, then the pure replay per tenant."""
    ids = [tenant_id for tenant_id, _ in batch]
    subscriptions = _by_tenant(repo.subscriptions_of(conn, ids))
    ledger = _by_tenant(repo.ledger_of(conn, ids))
    occurrences = _by_tenant(repo.occurrences_of(conn, ids))
    invoiced = _by_tenant(repo.invoiced_of(conn, ids))
    documents = repo.plan_documents(
        conn, sorted({s["plan_version_id"] for rows in subscriptions.values() for s in rows})
    )
    version_kinds = {v: {k: m.kind for k, m in plan_meters(doc).items()} for v, doc in documents.items()}
    kinds: dict[str, dict[str, MeterKind]] = {}  # subscription -> meter -> kind
    out = []
    for tenant_id, now in batch:
        subs = subscriptions.get(tenant_id, [])
        for s in subs:
            kinds[s["id"]] = version_kinds[s["plan_version_id"]]
        latest = subs[-1] if subs else None
        tier = documents[latest["plan_version_id"]].get("tier") if latest else None
        plan = fixed or choose_plan(catalog, code=latest["code"] if latest else None, tier=tier)
        served = [
            Served(s["starts_at"], s["ended_at"])
            for s in subs
            if s["trial_ends_at"] is None and (s["ended_at"] is None or s["ended_at"] > s["starts_at"])
        ]
        units = [
            Unit(at, kinds[sub][meter], n)
            for _, sub, meter, n, at in ledger.get(tenant_id, [])
            if meter in kinds.get(sub, {})
        ]
        result = reprice(
            plan,
            catalog.meters,
            anchor=min((s.start for s in served), default=now),
            until=now,
            since=since,
            served=served,
            units=units,
            occurrences=[OccurrenceUsage(at, counted, peak) for _, at, counted, peak in occurrences.get(tenant_id, [])],
            paid=[PaidLine(at, amount, currency) for _, at, amount, currency in invoiced.get(tenant_id, [])],
        )
        out.append(
            TenantRepricing(
                tenant_id, latest["catalog"] if latest else None, latest["code"] if latest else None, result
            )
        )
    return out
