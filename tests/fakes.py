"""In-memory twins of the repository ports (`farebox.ports`): domain-level rules of the services run against them
in microseconds, without a database (cosmicpython's `FakeRepository`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from farebox.catalog.domain import Meter
from farebox.subscriptions.domain.states import LIVE_STATUSES, Subscription


class FakeSubscriptionRepository:
    """Subscriptions in insertion order; `current` is the live one, or else the latest."""

    def __init__(self, *subscriptions: Subscription) -> None:
        self.rows: list[Subscription] = list(subscriptions)

    def add(self, subscription: Subscription) -> Subscription:
        self.rows.append(subscription)
        return subscription

    def current(self, tenant_id: str) -> Subscription | None:
        mine = [s for s in self.rows if s.tenant_id == tenant_id]
        live = [s for s in mine if s.status in LIVE_STATUSES]
        return (live or mine or [None])[-1]

    def current_of_many(self, tenant_ids: list[str]) -> dict[str, Subscription]:
        return {t: s for t in tenant_ids if (s := self.current(t)) is not None}

    def get(self, tenant_id: str, subscription_id: str) -> Subscription | None:
        return next((s for s in self.rows if s.tenant_id == tenant_id and s.id == subscription_id), None)


class FakeMeteringRepository:
    """Usage counters per (tenant, subscription, meter, period start), the meters of each plan version, and the
    tenants' own session limits."""

    def __init__(self, meters_by_version: Mapping[int, Mapping[str, Meter]]) -> None:
        self.meters_by_version = meters_by_version
        self.counters: list[dict[str, Any]] = []
        self.limits: dict[str, int] = {}

    def count(
        self, sub: Subscription, meter: str, used: int, *, carried_in: int = 0, period_start: datetime | None = None
    ) -> None:
        start = period_start or sub.period.start
        self.counters = [
            c
            for c in self.counters
            if (c["tenant_id"], c["subscription_id"], c["meter"], c["period_start_at"])
            != (sub.tenant_id, sub.id, meter, start)
        ]
        self.counters.append({
            "tenant_id": sub.tenant_id, "subscription_id": sub.id, "meter": meter, "period_start_at": start,
            "used": used, "carried_in": carried_in,
        })

    def meters_of(self, plan_version_id: int) -> dict[str, Meter]:
        return dict(self.meters_by_version[plan_version_id])

    def counters_for(self, tenant_id: str, subscription_id: str, period_start_at: datetime) -> list[dict[str, Any]]:
        return self.counters_of_many([(tenant_id, subscription_id, period_start_at)])

    def counters_of_many(self, periods: list[tuple[str, str, datetime]]) -> list[dict[str, Any]]:
        wanted = set(periods)
        return [
            dict(c) for c in self.counters if (c["tenant_id"], c["subscription_id"], c["period_start_at"]) in wanted
        ]

    def counters_between(
        self, tenant_id: str, subscription_id: str, start: datetime, end: datetime
    ) -> list[dict[str, Any]]:
        return [
            dict(c)
            for c in self.counters
            if c["tenant_id"] == tenant_id
            and c["subscription_id"] == subscription_id
            and start <= c["period_start_at"] < end
        ]

    def session_limit(self, tenant_id: str) -> int | None:
        return self.limits.get(tenant_id)

    def session_limits(self, tenant_ids: list[str]) -> dict[str, int | None]:
        return {t: self.limits.get(t) for t in tenant_ids}

    def fullest_occurrences(self, periods: list[tuple[str, str, datetime]]) -> dict[tuple[str, str], tuple[int, int]]:
        return {}  # no occurrences: per-occurrence meters show 0
