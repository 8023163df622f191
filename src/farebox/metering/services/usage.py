"""Usage: what a tenant used this period, its own session limit (A6), what invoicing bills,
the check that every counter equals its ledger (G3), and what metering does when
the subscription changes (L4, S5) or the tenant's data is purged (G14).

Reads are O(1) in the number of events: one counter row per meter and period.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection

from farebox.bootstrap import Farebox
from farebox.catalog.domain import Limit, Meter, MeterKind, Scope
from farebox.clocks.service import now_for
from farebox.events import signals
from farebox.events.signals import Signal
from farebox.kernel import reasons
from farebox.kernel.access import Principal, require_billing_access, require_operator
from farebox.kernel.reasons import DomainError
from farebox.metering.db import metering as repo
from farebox.metering.domain.admission import upgrade_covers_peak
from farebox.metering.domain.pools import (
    carried_forward,
    overage,
    percent,
    pool_rule,
    session_warnings,
    validate_session_limit,
)
from farebox.ports import MeteringRepository, SubscriptionRepository
from farebox.storage.uow import UnitOfWork
from farebox.subscriptions import db as subs_repo
from farebox.subscriptions.domain.states import Status, Subscription, trial_used_up


@dataclass(frozen=True)
class MeterUsage:
    meter: str
    kind: str
    scope: str
    unit: str
    used: int  # units counted this period
    included: int | None  # what the plan includes (+ carried forward, L4; a trial's bound, A3); per occurrence for caps
    limit: int | None  # where new usage stops or warnings are measured: the tenant's own limit (A6) or `included`
    left: int | None
    percent: int | None
    overage: int  # units beyond `included` (L8, A8)
    carried_in: int
    policy: str | None
    session_limit: int | None  # the tenant's own limit when set (A6)
    customer_limit_allowed: bool
    period_start: datetime
    period_end: datetime
    warnings: tuple[str, ...] = ()  # A6: "Session limit almost reached" from 80%, "... has been reached" at 100%


@dataclass(frozen=True)
class UsageSummary:
    tenant_id: str
    subscription_id: str | None
    plan: str | None
    period_start: datetime | None
    period_end: datetime | None
    meters: list[MeterUsage] = field(default_factory=list)

    def meter(self, key: str) -> MeterUsage:
        return next(m for m in self.meters if m.meter == key)


@dataclass(frozen=True)
class DailyUsage:
    day: date
    meter: str
    units: int


@dataclass(frozen=True)
class TopUsage:
    kind: str  # occurrence | conversation
    id: str
    units: int  # unique attendees counted, or billable sessions
    at: datetime | None


@dataclass(frozen=True)
class SessionLimit:
    meter: str
    before: int | None
    after: int | None
    base: int | None


# --- reading usage --------------------------------------------------------------------


def usage_summary(fb: Farebox, actor: Principal, tenant_id: str) -> UsageSummary:
    """Per meter this period: used, included, limit, left, percent (owner, admin)."""
    require_billing_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        now_for(uow, fb.clock, tenant_id)
        return summary_in(uow, tenant_id)


def summary_in(uow: UnitOfWork, tenant_id: str) -> UsageSummary:
    return summary_of(uow.subscriptions, uow.metering, tenant_id)


def summary_of(subscriptions: SubscriptionRepository, metering: MeteringRepository, tenant_id: str) -> UsageSummary:
    """Per meter this period: used, included, limit, left, percent, overage, warnings (L4, L8, A3, A6)."""
    sub = subscriptions.current(tenant_id)
    if sub is None:
        return UsageSummary(tenant_id, None, None, None, None)
    counters = metering.counters_for(tenant_id, sub.id, sub.period.start)
    fullest = metering.fullest_occurrences([(tenant_id, sub.id, sub.period.start)]).get((tenant_id, sub.id), (0, 0))
    return _summary(metering, tenant_id, sub, counters, metering.session_limit(tenant_id), fullest)


def summaries_of(
    metering: MeteringRepository, current: dict[str, Subscription], tenant_ids: list[str]
) -> dict[str, UsageSummary]:
    """`summary_of` many tenants whose current subscriptions are known, in a constant number of statements."""
    periods = [(t, sub.id, sub.period.start) for t, sub in current.items()]
    counters: dict[str, list[dict[str, Any]]] = {}
    for row in metering.counters_of_many(periods):
        counters.setdefault(row["tenant_id"], []).append(row)
    limits = metering.session_limits(list(current))
    fullest = metering.fullest_occurrences(periods)
    return {
        t: _summary(
            metering, t, current[t], counters.get(t, []), limits.get(t), fullest.get((t, current[t].id), (0, 0))
        )
        if t in current
        else UsageSummary(t, None, None, None, None)
        for t in tenant_ids
    }


def _summary(
    metering: MeteringRepository, tenant_id: str, sub: Subscription, counter_rows: list[dict[str, Any]],
    session_limit: int | None, fullest: tuple[int, int] = (0, 0),
) -> UsageSummary:
    meters = metering.meters_of(sub.plan_version_id)
    counters = {c["meter"]: c for c in counter_rows}
    rows = [
        _meter_usage(sub, meter, sub.plan.limit(key), counters.get(key), session_limit, fullest)
        for key, meter in meters.items()
    ]
    return UsageSummary(tenant_id, sub.id, sub.plan.code, sub.period.start, sub.period.end, rows)


def _meter_usage(
    sub: Subscription, meter: Meter, limit: Limit | None, counter: dict[str, Any] | None, session_limit: int | None,
    fullest: tuple[int, int] = (0, 0),
) -> MeterUsage:
    used = counter["used"] if counter else 0
    carried = counter["carried_in"] if counter else 0
    allowed = bool(limit and limit.customer_limit and not sub.plan.is_free and sub.status is not Status.TRIALING)
    own = session_limit if allowed else None
    if (
        meter.scope is Scope.OCCURRENCE
    ):  # the fullest occurrence of the period against the per-occurrence cap, not a sum
        used = fullest[1] if meter.kind is MeterKind.CONCURRENT_ATTENDEES else fullest[0]
        included = limit.included if limit else None
        return MeterUsage(
            meter.key,
            meter.kind.value,
            meter.scope.value,
            meter.unit,
            used,
            included,
            included,
            None,
            None,
            0,
            0,
            limit.policy.value if limit else None,
            None,
            False,
            sub.period.start,
            sub.period.end,
        )
    trial_bound = (
        sub.plan.trial.usage.get(meter.key)
        if (sub.status is Status.TRIALING or trial_used_up(sub)) and sub.plan.trial
        else None
    )
    rule = pool_rule(sub.plan, limit, meter.kind, carried_in=carried, customer_limit=own, trial_bound=trial_bound)
    shown = rule.cap if rule.cap is not None else rule.warn_at
    return MeterUsage(
        meter=meter.key,
        kind=meter.kind.value,
        scope=meter.scope.value,
        unit=meter.unit,
        used=used,
        included=rule.included,
        limit=shown,
        left=None if shown is None else max(0, shown - used),
        percent=percent(used, shown),
        overage=overage(used, rule.included),
        carried_in=carried,
        policy=limit.policy.value if limit else None,
        session_limit=own,
        customer_limit_allowed=allowed,
        period_start=sub.period.start,
        period_end=sub.period.end,
        warnings=tuple(w.text for w in session_warnings(used, rule, meter.kind)),
    )


def daily_usage(fb: Farebox, actor: Principal, tenant_id: str) -> list[DailyUsage]:
    """Units counted per day this period, per meter (for the usage chart)."""
    require_billing_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        now_for(uow, fb.clock, tenant_id)
        sub = subs_repo.current(uow.conn, tenant_id)
        if sub is None:
            return []
        return [
            DailyUsage(date.fromisoformat(d), m, n)
            for d, m, n in repo.daily(uow.conn, tenant_id, sub.id, sub.period.start)
        ]


def top_usage(
    fb: Farebox, actor: Principal, tenant_id: str, limit: int = 10, *, this_period: bool = True
) -> list[TopUsage]:
    """The largest occurrences (unique attendees) and conversations (billable sessions) of the
    current period, by the units counted in it (not all-time); `this_period=False`: over all time, from
    the event data (what G14's purge deletes)."""
    require_billing_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        now_for(uow, fb.clock, tenant_id)
        if not this_period:
            return [TopUsage(**row) for row in repo.top(uow.conn, tenant_id, max(1, min(limit, 100)))]
        sub = subs_repo.current(uow.conn, tenant_id)
        if sub is None:
            return []
        rows = repo.top_in_period(uow.conn, tenant_id, sub.id, sub.period.start, max(1, min(limit, 100)))
        return [TopUsage(**row) for row in rows]


def billable_usage(
    conn: Connection, tenant_id: str, subscription_id: str, period_start: datetime, period_end: datetime
) -> dict[str, int]:
    """Units counted per meter for periods starting in [period_start, period_end) of a subscription.

    Totals, not overage: the overage is what exceeds `included` (+ carried
    forward credits); `overage_usage` gives it directly."""
    return repo.used_between(conn, tenant_id, subscription_id, period_start, period_end)


def overage_usage(
    subscriptions: SubscriptionRepository, metering: MeteringRepository, tenant_id: str, subscription_id: str,
    period_start: datetime, period_end: datetime,
) -> dict[str, int]:
    """Units beyond what the plan included (L8, A8), per period meter whose plan prices overage."""
    sub = subscriptions.get(tenant_id, subscription_id)
    if sub is None:
        return {}
    found: dict[str, int] = {}
    for counter in metering.counters_between(tenant_id, subscription_id, period_start, period_end):
        limit = sub.plan.limit(counter["meter"])
        if limit is None or limit.overage_unit_price is None or limit.included is None:
            continue
        found[counter["meter"]] = found.get(counter["meter"], 0) + overage(
            counter["used"], limit.included + counter["carried_in"]
        )
    return found


# --- the tenant's own session limit (A6) ------------------------------------------------------


def set_session_limit(fb: Farebox, actor: Principal, tenant_id: str, sessions: int) -> SessionLimit:
    """A6: a monthly session limit > 0 on paid plans; new sessions stop at it."""
    return _change_limit(fb, actor, tenant_id, sessions)


def reset_session_limit(fb: Farebox, actor: Principal, tenant_id: str) -> SessionLimit:
    """A6: back to the plan's base limit."""
    return _change_limit(fb, actor, tenant_id, None)


def _change_limit(fb: Farebox, actor: Principal, tenant_id: str, sessions: int | None) -> SessionLimit:
    require_billing_access(actor, tenant_id)
    if sessions is not None and (isinstance(sessions, bool) or not isinstance(sessions, int)):
        raise DomainError(reasons.SESSION_LIMIT_INVALID)
    with fb.uow() as uow:
        now = now_for(uow, fb.clock, tenant_id)
        sub = subs_repo.current(uow.conn, tenant_id)
        if sub is None or not sub.is_live or sub.status is Status.TRIALING:
            raise DomainError(reasons.SESSION_LIMIT_NOT_AVAILABLE)
        limit = next((lim for lim in sub.plan.limits if lim.customer_limit), None)
        if sessions is not None or limit is None:
            problem = validate_session_limit(sub.plan, limit, sessions if sessions is not None else 1)
            if problem is not None:
                raise DomainError(problem)
        assert limit is not None
        before = repo.settings(uow.conn, tenant_id)["session_limit"]
        repo.put_settings(uow.conn, tenant_id, now, session_limit=sessions)
        if before != sessions:
            signals.publish(
                uow,
                Signal(
                    "usage.session_limit_changed",
                    tenant_id,
                    now,
                    actor.label(),
                    sub.id,
                    {"before": before, "after": sessions},
                ),
            )
        uow.commit()
    return SessionLimit(limit.meter, before, sessions, limit.included)


# --- G3: every counter re-derived from its ledger ---------------------------------------------------


def verify(fb: Farebox, actor: Principal, tenant_id: str | None = None) -> list[dict[str, Any]]:
    """Recompute every counter from the recorded units; the differences (none when all is well)."""
    require_operator(actor)
    with fb.uow(readonly=True) as uow:
        conn = uow.conn
        return (
            repo.counter_differences(conn, tenant_id)
            + repo.occurrence_differences(conn, tenant_id)
            + repo.conversation_differences(conn, tenant_id)
        )


# --- what other areas tell metering -------------------------------------------------------------------


@signals.on("subscription.plan_changed")
def _on_plan_changed(uow: UnitOfWork, signal: Signal) -> None:
    """An upgrade: limits are read from the new plan at once (running occurrences go on);
    remaining credits carry forward (L4); S5's upgrade_required is cleared once the new plan's cap covers the
    peak.  An immediate change back to a plan whose pool this period already handed out (Pro -> Free -> Pro)
    reopens that pool as it was, never a second one: units used stay used, so changing
    plans never hands out a fresh pool (L3)."""
    data = signal.data
    conn = uow.conn
    new = subs_repo.get(conn, signal.tenant_id, signal.subject or "")
    if new is None:
        return
    if data.get("upgrade"):
        flags = repo.settings(conn, signal.tenant_id)
        peak = flags["upgrade_required_peak"]
        if peak is not None and upgrade_covers_peak(new.plan, flags["upgrade_required_meter"], peak):
            repo.put_settings(
                conn, signal.tenant_id, signal.at, upgrade_required_peak=None, upgrade_required_meter=None
            )
    old_id = data.get("from_subscription_id")
    if not old_id or old_id == new.id:
        return
    old = subs_repo.get(conn, signal.tenant_id, old_id)
    carried = {}
    if data.get("upgrade"):
        for counter in repo.latest_counters(conn, signal.tenant_id, old_id):
            key = counter["meter"]
            new_limit, old_limit = new.plan.limit(key), old.plan.limit(key) if old else None
            if new_limit is not None and new_limit.carry_forward_on_upgrade and old_limit is not None:
                carried[key] = carried_forward(old_limit.included, counter["carried_in"], counter["used"])
    if data.get("immediate"):
        for key, left in _pools_already_given(conn, signal.tenant_id, new, signal.at).items():
            limit = new.plan.limit(key)
            assert limit is not None and limit.included is not None
            carried[key] = carried.get(key, 0) + left - limit.included
    for key, carried_in in carried.items():
        repo.ensure_counter(
            conn,
            tenant_id=signal.tenant_id,
            subscription_id=new.id,
            meter=key,
            period_start_at=new.period.start,
            period_end_at=new.period.end,
            carried_in=carried_in,
        )


def _pools_already_given(conn: Connection, tenant_id: str, new: Subscription, at: datetime) -> dict[str, int]:
    """What is left (never below 0) of the pools the tenant had this period on `new`'s plan,
    from an earlier subscription (not a trial) whose period holds `at`: meter -> units left."""
    left: dict[str, tuple[datetime, int]] = {}
    plans: dict[str, Subscription | None] = {}
    for counter in repo.counters_at(conn, tenant_id, at):
        sid = counter["subscription_id"]
        if sid == new.id:
            continue
        if sid not in plans:
            plans[sid] = subs_repo.get(conn, tenant_id, sid)
        earlier = plans[sid]
        limit = new.plan.limit(counter["meter"])
        if (
            earlier is None
            or earlier.trial_ends_at is not None
            or limit is None
            or limit.included is None
            or limit.overage_unit_price is not None
        ):
            continue
        if (earlier.catalog, earlier.plan.code) != (new.catalog, new.plan.code):
            continue
        remaining = max(0, limit.included + counter["carried_in"] - counter["used"])
        if counter["meter"] not in left or left[counter["meter"]][0] < counter["period_start_at"]:
            left[counter["meter"]] = (counter["period_start_at"], remaining)
    return {meter: units for meter, (_, units) in left.items()}


@signals.on("tenant.retention_purge")
def _on_retention_purge(uow: UnitOfWork, signal: Signal) -> None:
    """G14: event data older than `before` goes; counters and the ledger stay (billing records)."""
    before = signal.data["before"]
    if isinstance(before, str):
        before = datetime.fromisoformat(before)
    repo.purge_events(uow.conn, signal.tenant_id, before)
