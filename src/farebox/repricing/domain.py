"""Repricing: a tenant's recorded usage replayed under another catalog's plan (L11).

What was counted is taken as recorded (G3): one `Unit` per ledger row of a
period meter, one `OccurrenceUsage` per occurrence (unique attendees counted
and the peak in the room).  Each is matched to the new plan's meters **by
kind** (attendees, concurrent attendees, billable sessions), so usage recorded
under one catalog's meter names is counted by another's.

The new plan's periods run from the tenant's billing anchor (the start of its
first served stretch), in the new plan's interval; a period is billed when it
overlaps a served stretch (time on a subscription, trials excluded).  For each
period the charges are the ones `invoicing/domain/charges.py` would bill: the
recurring fee (`fee_charge`, whole period) and the overage (`overage_charges`).
What the tenant was invoiced is attributed to the period holding each line's
service start.  Amounts are exact minor units, before tax.

Limits of the new plan that would have been hit:

* a period pool (`scope: period`) with a `hard` policy (or a waiting room)
  refuses every unit beyond `included`;
* an occurrence cap (`scope: occurrence`): `hard` and waiting rooms refuse the
  attendees beyond it in each occurrence; `soft` refuses nobody but marks the
  overrun (S5: the host is told, an upgrade is needed before the next start);
* `overage` never refuses (the excess is billed), and unlimited meters never do.

Usage the old plan itself refused was never recorded, so it cannot be replayed.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from farebox.catalog.domain import Catalog, Meter, MeterKind, Plan, Policy, Scope
from farebox.invoicing.domain.charges import Segment, fee_charge, overage_charges
from farebox.kernel.periods import Period, period_at, periods_between

__all__ = [
    "LimitHit",
    "OccurrenceUsage",
    "PaidLine",
    "RepricedPeriod",
    "Repricing",
    "Served",
    "Unit",
    "choose_plan",
    "reprice",
]

REFUSING = frozenset({Policy.HARD, Policy.HARD_WITH_WAITING_ROOM})


@dataclass(frozen=True, slots=True)
class Unit:
    """Units of a period meter counted at `at` (one ledger row)."""

    at: datetime
    kind: MeterKind
    units: int = 1


@dataclass(frozen=True, slots=True)
class OccurrenceUsage:
    """What one occurrence reached: unique attendees counted (S4, L2) and the peak present (S5)."""

    started_at: datetime
    attendees: int
    peak: int


@dataclass(frozen=True, slots=True)
class PaidLine:
    """One invoice line the tenant was billed (not void), at its service start."""

    at: datetime
    amount_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class Served:
    """A stretch of time on a subscription (trial time excluded): [start, end), `end` None while it lasts."""

    start: datetime
    end: datetime | None = None

    def overlaps(self, period: Period) -> bool:
        return self.start < period.end and (self.end is None or period.start < self.end)


@dataclass(frozen=True, slots=True)
class LimitHit:
    """A limit of the new plan that would have been reached in one period."""

    meter: str
    policy: Policy
    included: int
    reached: int  # the pool's total, or the highest occurrence figure
    refused: int  # units (attendees, sessions) that would have been refused
    occurrences: int = 0  # occurrence caps: how many occurrences went over

    def describe(self) -> str:
        where = f" in {self.occurrences} occurrence(s)" if self.occurrences else ""
        if self.refused:
            return f"{self.meter}: {self.refused} refused{where} (limit {self.included}, reached {self.reached})"
        return (
            f"{self.meter}: over the {self.policy.value} limit {self.included}{where} (reached {self.reached}; "
            "upgrade required)"
        )


@dataclass(frozen=True, slots=True)
class RepricedPeriod:
    period: Period
    complete: bool  # ended by `until`; otherwise the overage is the usage so far
    served: bool  # the tenant was a customer during it: the fee is due
    usage: Mapping[str, int]  # new period meter -> units counted in the period
    paid: Mapping[str, int]  # currency -> minor units invoiced for it
    fee_minor: int
    overage_minor: int
    hits: tuple[LimitHit, ...] = ()
    occurrences: int = 0  # occurrences started in the period
    highest: Mapping[str, int] = field(
        default_factory=dict
    )  # capped occurrence meter -> highest figure of one occurrence

    @property
    def would_pay_minor(self) -> int:
        return self.fee_minor + self.overage_minor


@dataclass(frozen=True, slots=True)
class Repricing:
    plan: Plan
    currency: str
    periods: tuple[RepricedPeriod, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def paid(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for p in self.periods:
            for currency, amount in p.paid.items():
                total[currency] = total.get(currency, 0) + amount
        return total

    @property
    def would_pay_minor(self) -> int:
        return sum(p.would_pay_minor for p in self.periods)

    @property
    def change_minor(self) -> int | None:
        """Would pay minus paid, in the new plan's currency; None when the tenant paid in another currency."""
        paid = self.paid
        if any(c != self.currency for c, amount in paid.items() if amount):
            return None
        return self.would_pay_minor - paid.get(self.currency, 0)

    @property
    def hit_periods(self) -> tuple[RepricedPeriod, ...]:
        return tuple(p for p in self.periods if p.hits)


def choose_plan(catalog: Catalog, *, code: str | None, tier: int | None) -> Plan:
    """The new catalog's plan for a tenant: the same plan code if the catalog has it,
    else the plan at the same tier position (plans are listed in tier order),
    the catalog's highest plan when the tenant's tier is above its top."""
    if code is not None and code in catalog.plans:
        return catalog.plans[code]
    plans = list(catalog.plans.values())
    if not plans:
        raise ValueError(f"catalog {catalog.name!r} has no plans")
    return plans[min(max(tier or 0, 0), len(plans) - 1)]


def _periods(plan: Plan, anchor: datetime, since: datetime, until: datetime) -> list[Period]:
    """The new plan's periods from the one holding `since` to the one holding `until` (the current one)."""
    if until < anchor or since > until:
        return []
    return list(periods_between(anchor, plan.interval, max(since, anchor), period_at(anchor, plan.interval, until).end))


def _bucket(starts: Sequence[datetime], periods: Sequence[Period], at: datetime) -> int | None:
    i = bisect_right(starts, at) - 1
    return i if i >= 0 and at < periods[i].end else None


def reprice(
    plan: Plan,
    meters: Mapping[str, Meter],
    *,
    anchor: datetime,
    until: datetime,
    since: datetime | None = None,
    served: Iterable[Served] = (),
    units: Iterable[Unit] = (),
    occurrences: Iterable[OccurrenceUsage] = (),
    paid: Iterable[PaidLine] = (),
) -> Repricing:
    """Replay recorded usage under `plan` (with its catalog's `meters`), period by period from `anchor`
    (or the period holding `since`) to the period holding `until` (now)."""
    stretches = list(served)
    periods = _periods(plan, anchor, since or anchor, until) if stretches else []
    if not periods:  # never served (no subscription, or trials only): nothing to replay
        return Repricing(plan, plan.price.currency)
    starts = [p.start for p in periods]
    period_meters = {k: m for k, m in meters.items() if m.scope is Scope.PERIOD}
    cap_meters = {k: m for k, m in meters.items() if m.scope is Scope.OCCURRENCE}
    usage: list[dict[str, int]] = [dict.fromkeys(period_meters, 0) for _ in periods]
    for unit in units:
        i = _bucket(starts, periods, unit.at)
        if i is not None:
            for key, meter in period_meters.items():
                if meter.kind is unit.kind:
                    usage[i][key] += unit.units
    billed: list[dict[str, int]] = [{} for _ in periods]
    for line in paid:
        i = _bucket(starts, periods, line.at)
        if i is not None:
            billed[i][line.currency] = billed[i].get(line.currency, 0) + line.amount_minor
    per_occurrence: list[list[OccurrenceUsage]] = [[] for _ in periods]
    for occ in occurrences:
        i = _bucket(starts, periods, occ.started_at)
        if i is not None:
            per_occurrence[i].append(occ)
    out = []
    for i, period in enumerate(periods):
        is_served = any(s.overlaps(period) for s in stretches)
        fee = (
            fee_charge(Segment("reprice", 0, plan, period, period.start, period.end)).amount_minor
            if is_served and not plan.is_free
            else 0
        )
        overage = sum(
            c.amount_minor
            for c in overage_charges(plan, subscription_id="reprice", plan_version_id=0, period=period, usage=usage[i])
        )
        hits = _pool_hits(plan, usage[i]) + _cap_hits(plan, cap_meters, per_occurrence[i])
        highest = {
            key: max(_figure(m, o) for o in per_occurrence[i])
            for key, m in cap_meters.items()
            if per_occurrence[i] and plan.limit(key)
        }
        out.append(
            RepricedPeriod(
                period,
                period.end <= until,
                is_served,
                usage[i],
                billed[i],
                fee,
                overage,
                tuple(hits),
                len(per_occurrence[i]),
                highest,
            )
        )
    return Repricing(plan, plan.price.currency, tuple(out))


def _pool_hits(plan: Plan, usage: Mapping[str, int]) -> list[LimitHit]:
    hits = []
    for key, used in sorted(usage.items()):
        limit = plan.limit(key)
        if limit is None or limit.included is None or limit.policy is Policy.OVERAGE or used <= limit.included:
            continue
        refused = used - limit.included if limit.policy in REFUSING else 0
        hits.append(LimitHit(key, limit.policy, limit.included, used, refused))
    return hits


def _figure(meter: Meter, occurrence: OccurrenceUsage) -> int:
    """What an occurrence cap measures: the peak in the room (concurrent, S5) or the unique attendees (S4)."""
    return occurrence.peak if meter.kind is MeterKind.CONCURRENT_ATTENDEES else occurrence.attendees


def _cap_hits(plan: Plan, meters: Mapping[str, Meter], occurrences: Sequence[OccurrenceUsage]) -> list[LimitHit]:
    hits = []
    for key, meter in sorted(meters.items()):
        limit = plan.limit(key)
        if limit is None or limit.included is None or limit.policy is Policy.OVERAGE:
            continue
        figures = [_figure(meter, o) for o in occurrences]
        over = [f for f in figures if f > limit.included]
        if not over:
            continue
        refused = sum(f - limit.included for f in over) if limit.policy in REFUSING else 0
        hits.append(LimitHit(key, limit.policy, limit.included, max(over), refused, occurrences=len(over)))
    return hits
