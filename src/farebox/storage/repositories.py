"""The SQL implementations of the repository ports (`farebox.ports`), bound to a unit of work's connection."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from farebox.catalog.domain import Meter
from farebox.metering.db import metering as metering_repo
from farebox.subscriptions import db as subscriptions_repo
from farebox.subscriptions.domain.states import Subscription


class SqlSubscriptionRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def current(self, tenant_id: str) -> Subscription | None:
        return subscriptions_repo.current(self.conn, tenant_id)

    def current_of_many(self, tenant_ids: list[str]) -> dict[str, Subscription]:
        return subscriptions_repo.current_of_many(self.conn, tenant_ids)

    def get(self, tenant_id: str, subscription_id: str) -> Subscription | None:
        return subscriptions_repo.get(self.conn, tenant_id, subscription_id)


class SqlMeteringRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def meters_of(self, plan_version_id: int) -> dict[str, Meter]:
        return metering_repo.meters_of(self.conn, plan_version_id)

    def counters_for(self, tenant_id: str, subscription_id: str, period_start_at: datetime) -> list[dict[str, Any]]:
        return metering_repo.counters_for(self.conn, tenant_id, subscription_id, period_start_at)

    def counters_of_many(self, periods: list[tuple[str, str, datetime]]) -> list[dict[str, Any]]:
        return metering_repo.counters_of_many(self.conn, periods)

    def counters_between(
        self, tenant_id: str, subscription_id: str, start: datetime, end: datetime
    ) -> list[dict[str, Any]]:
        return metering_repo.counters_between(self.conn, tenant_id, subscription_id, start, end)

    def session_limit(self, tenant_id: str) -> int | None:
        limit: int | None = metering_repo.settings(self.conn, tenant_id)["session_limit"]
        return limit

    def fullest_occurrences(self, periods: list[tuple[str, str, datetime]]) -> dict[tuple[str, str], tuple[int, int]]:
        return metering_repo.fullest_occurrences(self.conn, periods)

    def session_limits(self, tenant_ids: list[str]) -> dict[str, int | None]:
        found = metering_repo.settings_of_many(self.conn, tenant_ids)
        return {t: found[t]["session_limit"] if t in found else None for t in tenant_ids}
