"""Subscriptions and their transitions."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, bindparam, insert, literal_column, select, update

from farebox.catalog.files import plan_from_document
from farebox.kernel.periods import Period
from farebox.storage.hot import Hot
from farebox.storage.ids import new_id
from farebox.storage.immutable_cache import ImmutableRowCache
from farebox.storage.tables.core import plan_versions, tenants, test_clocks
from farebox.storage.tables.subscriptions import sales_requests, subscription_transitions, subscriptions
from farebox.subscriptions.domain.states import LIVE_STATUSES, Status, Subscription

# Rows that never were, or no longer are, the tenant's subscription of record.
_NOT_CURRENT = (Status.UPCOMING.value, Status.REPLACED.value, Status.SCHEDULE_CANCELED.value)
# The statuses as SQL literals (fixed enum values): an IN list of bind parameters
# would be expanded again at every execution.
_LIVE_SQL: list[ColumnElement[str]] = [literal_column(f"'{s}'") for s in sorted(s.value for s in LIVE_STATUSES)]
_NOT_CURRENT_SQL: list[ColumnElement[str]] = [literal_column(f"'{s}'") for s in _NOT_CURRENT]

_PLAN_CACHE: ImmutableRowCache[tuple[str, Any]] = ImmutableRowCache()


def _plan(conn: Connection, version_id: int) -> tuple[str, Any]:
    # Plan versions never change once written, so they can be cached for the process.
    def load() -> tuple[str, Any]:
        row = conn.execute(select(plan_versions).where(plan_versions.c.id == version_id)).mappings().one()
        return (row["catalog"], plan_from_document(row["document"], catalog=row["catalog"], code=row["code"]))

    return _PLAN_CACHE.get(conn, version_id, load)


def to_domain(conn: Connection, row: Any) -> Subscription:
    catalog, plan = _plan(conn, row["plan_version_id"])
    return Subscription(
        tenant_id=row["tenant_id"],
        id=row["id"],
        plan=plan,
        plan_version_id=row["plan_version_id"],
        catalog=catalog,
        status=Status(row["status"]),
        anchor_at=row["anchor_at"],
        period=Period(row["period_start_at"], row["period_end_at"], 0),
        starts_at=row["starts_at"],
        trial_ends_at=row["trial_ends_at"],
        cancel_at_period_end=row["cancel_at_period_end"],
        grace_ends_at=row["grace_ends_at"],
        ended_at=row["ended_at"],
        settings=row["settings"] or {},
        replaces_id=row["replaces_id"],
        trial_usage=row["trial_usage"] or {},
        cancel_effective_at=row["cancel_effective_at"],
        overdue_invoice_id=row["overdue_invoice_id"],
    )


def insert_subscription(conn: Connection, **values: Any) -> None:
    conn.execute(insert(subscriptions).values(**values))


# Built once (bind parameters): `get` runs on every recorded unit (the lifecycle's trial listener).
_GET = select(subscriptions).where(
    subscriptions.c.tenant_id == bindparam("tenant_id"), subscriptions.c.id == bindparam("id")
)
_GET_FOR_UPDATE = _GET.with_for_update()


def get(conn: Connection, tenant_id: str, subscription_id: str, *, for_update: bool = False) -> Subscription | None:
    row = (
        conn.execute(_GET_FOR_UPDATE if for_update else _GET, {"tenant_id": tenant_id, "id": subscription_id})
        .mappings()
        .first()
    )
    return to_domain(conn, row) if row else None


_LIVE = (
    select(subscriptions)
    .where(subscriptions.c.tenant_id == bindparam("tenant_id"), subscriptions.c.status.in_(_LIVE_SQL))
    .limit(1)
)
_LATEST_ENDED = (
    select(subscriptions)
    .where(subscriptions.c.tenant_id == bindparam("tenant_id"), subscriptions.c.status.not_in(_NOT_CURRENT_SQL))
    .order_by(subscriptions.c.created_at.desc(), subscriptions.c.id.desc())
    .limit(1)
)
_LIVE_FOR_UPDATE = _LIVE.with_for_update()
_LATEST_ENDED_FOR_UPDATE = _LATEST_ENDED.with_for_update()


def current(conn: Connection, tenant_id: str, *, for_update: bool = False) -> Subscription | None:
    """The tenant's live subscription, or else its latest ended one, or None.

    On metering's hot path: one indexed lookup of the live row (a tenant has at
    most one) with a statement built once; only when there is none a second
    lookup for the latest ended row.
    """
    params = {"tenant_id": tenant_id}
    row = conn.execute(_LIVE_FOR_UPDATE if for_update else _LIVE, params).mappings().first()
    if row is None:
        row = conn.execute(_LATEST_ENDED_FOR_UPDATE if for_update else _LATEST_ENDED, params).mappings().first()
    return to_domain(conn, row) if row else None


def current_of_many(conn: Connection, tenant_ids: list[str]) -> dict[str, Subscription]:
    """`current` for many tenants in two statements (the operator console's list): the live rows, then
    the latest ended row of the tenants without one."""
    if not tenant_ids:
        return {}
    c = subscriptions.c
    found = {
        r["tenant_id"]: to_domain(conn, r)
        for r in conn.execute(
            select(subscriptions).where(c.tenant_id.in_(tenant_ids), c.status.in_(_LIVE_SQL))
        ).mappings()
    }
    rest = [t for t in tenant_ids if t not in found]
    if rest:
        ended = select(subscriptions).where(c.tenant_id.in_(rest), c.status.not_in(_NOT_CURRENT_SQL))
        for r in conn.execute(ended.order_by(c.tenant_id, c.created_at.desc(), c.id.desc())).mappings():
            if r["tenant_id"] not in found:
                found[r["tenant_id"]] = to_domain(conn, r)
    return found


# Admission's first statement: the tenant (does it exist?), its test clock's
# time, and its live subscription, in one indexed look-up.
_CLOCK_AND_LIVE = (
    select(tenants.c.id.label("_tenant"), test_clocks.c.now_at.label("_clock_now"), *subscriptions.c)
    .select_from(
        tenants.outerjoin(test_clocks, tenants.c.test_clock_id == test_clocks.c.id).outerjoin(
            subscriptions, and_(subscriptions.c.tenant_id == tenants.c.id, subscriptions.c.status.in_(_LIVE_SQL))
        )
    )
    .where(tenants.c.id == bindparam("tenant_id"))
    .limit(1)
)
_HOT_CLOCK_AND_LIVE = Hot(_CLOCK_AND_LIVE)
# The answer for each row exactly as the driver returned it: a row that changes in any column
# (status, period, settings, the test clock's time...) is another key, so nothing goes stale.
_BY_ROW: ImmutableRowCache[tuple[datetime | None, Subscription | None]] = ImmutableRowCache(max_entries=10_000)


def _clock_and_live(conn: Connection, raw: tuple[Any, ...]) -> tuple[datetime | None, Subscription | None]:
    row = _HOT_CLOCK_AND_LIVE.process(conn, raw[:_CLOCK_AND_LIVE_WIDTH])
    return row["_clock_now"], to_domain(conn, row) if row["id"] is not None else None


_CLOCK_AND_LIVE_WIDTH = len(_CLOCK_AND_LIVE.selected_columns)


def clock_and_current(conn: Connection, tenant_id: str) -> tuple[bool, datetime | None, Subscription | None]:
    """(tenant exists, its test clock's time or None, `current(conn, tenant_id)`).

    One statement when the tenant has a live subscription; a second one (the
    latest ended row) only when it has none, exactly as `current` does.
    """
    exists, clock_now, sub, _ = clock_and_current_with(conn, tenant_id, _HOT_CLOCK_AND_LIVE, {})
    return exists, clock_now, sub


def clock_and_live_columns() -> list[Any]:
    """The columns of `clock_and_current`'s statement, for a statement that reads more beside them."""
    return list(_CLOCK_AND_LIVE.selected_columns)


def clock_and_live_from() -> Any:
    """Its FROM clause (tenant, test clock, live subscription), to be joined further."""
    return _CLOCK_AND_LIVE.get_final_froms()[0]


def clock_and_current_with(
    conn: Connection, tenant_id: str, statement: Hot, params: dict[str, Any]
) -> tuple[bool, datetime | None, Subscription | None, tuple[Any, ...]]:
    """`clock_and_current` read by `statement`, whose first columns are `clock_and_live_columns()`
    (and whose `tenant_id` parameter is the tenant's id); the rest of its row as the driver
    returned it (`Hot.process`)."""
    raw = statement.first_raw(conn, {"tenant_id": tenant_id, **params})
    if raw is None:
        return False, None, None, ()
    head, rest = raw[:_CLOCK_AND_LIVE_WIDTH], tuple(raw[_CLOCK_AND_LIVE_WIDTH:])
    try:
        key = tuple(repr(v) if isinstance(v, (dict, list)) else v for v in head)
        clock_now, live = _BY_ROW.get(conn, key, lambda: _clock_and_live(conn, head))
    except TypeError:  # a driver value that cannot be a key: not kept
        clock_now, live = _clock_and_live(conn, head)
    if live is not None:
        return True, clock_now, live, rest
    ended = conn.execute(_LATEST_ENDED, {"tenant_id": tenant_id}).mappings().first()
    return True, clock_now, to_domain(conn, ended) if ended else None, rest


def update_subscription(conn: Connection, tenant_id: str, subscription_id: str, **values: Any) -> None:
    conn.execute(
        update(subscriptions)
        .where(subscriptions.c.tenant_id == tenant_id, subscriptions.c.id == subscription_id)
        .values(row_version=subscriptions.c.row_version + 1, **values)
    )


def record_transition(
    conn: Connection,
    *,
    tenant_id: str,
    subscription_id: str,
    from_status: Status | None,
    to_status: Status,
    at: datetime,
    cause: str,
    details: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        insert(subscription_transitions).values(
            tenant_id=tenant_id,
            id=new_id("str"),
            subscription_id=subscription_id,
            from_status=from_status.value if from_status else None,
            to_status=to_status.value,
            at=at,
            cause=cause,
            details=details or {},
        )
    )


def transitions(conn: Connection, tenant_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(subscription_transitions)
        .where(subscription_transitions.c.tenant_id == tenant_id)
        .order_by(subscription_transitions.c.at, subscription_transitions.c.id)
    )
    return [dict(r) for r in rows.mappings()]


def upcoming(conn: Connection, tenant_id: str, *, for_update: bool = False) -> Subscription | None:
    """The tenant's scheduled plan change (G7), if any."""
    query = select(subscriptions).where(
        subscriptions.c.tenant_id == tenant_id, subscriptions.c.status == Status.UPCOMING.value
    )
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query.order_by(subscriptions.c.created_at.desc()).limit(1)).mappings().first()
    return to_domain(conn, row) if row else None


def has_had_trial(conn: Connection, tenant_id: str) -> bool:
    """A3/A4: has this tenant ever started a trial (whatever became of it)?"""
    row = conn.execute(
        select(subscriptions.c.id)
        .where(subscriptions.c.tenant_id == tenant_id, subscriptions.c.trial_ends_at.is_not(None))
        .limit(1)
    ).first()
    return row is not None


def all_for_tenant(conn: Connection, tenant_id: str) -> list[Subscription]:
    rows = conn.execute(
        select(subscriptions)
        .where(subscriptions.c.tenant_id == tenant_id)
        .order_by(subscriptions.c.created_at, subscriptions.c.id)
    ).mappings()
    return [to_domain(conn, r) for r in rows]


def insert_sales_request(conn: Connection, **values: Any) -> None:
    conn.execute(insert(sales_requests).values(**values))


def sales_requests_for(conn: Connection, tenant_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(sales_requests)
        .where(sales_requests.c.tenant_id == tenant_id)
        .order_by(sales_requests.c.requested_at, sales_requests.c.id)
    )
    return [dict(r) for r in rows.mappings()]


def _of_tenants(pairs: list[tuple[str, str]], *columns: Any) -> Any:
    """Rows of these `(tenant_id, subscription_id)`'s tenants (by the key's leading column;
    the caller keeps the pairs it asked for)."""
    return select(subscriptions.c.tenant_id, subscriptions.c.id, *columns).where(
        subscriptions.c.tenant_id.in_(sorted({t for t, _ in pairs}))
    )


def plans_of(conn: Connection, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """The plan of each of these subscriptions that exists, in one query (batch listeners)."""
    wanted = set(pairs)
    rows: Iterable[Any] = conn.execute(_of_tenants(pairs, subscriptions.c.plan_version_id)) if pairs else []
    return {(r.tenant_id, r.id): _plan(conn, r.plan_version_id)[1] for r in rows if (r.tenant_id, r.id) in wanted}


def in_grace_or_replaced(conn: Connection, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Those of these subscriptions that are in a grace period or replaced, in one query."""
    if not pairs:
        return set()
    query = _of_tenants(pairs).where(
        (subscriptions.c.grace_ends_at.is_not(None)) | (subscriptions.c.status == Status.REPLACED.value)
    )
    return {(r.tenant_id, r.id) for r in conn.execute(query)} & set(pairs)
