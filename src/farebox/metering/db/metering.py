"""Queries of metering and admission.  None commits; the service owns the transaction.

Concurrency: a join locks its occurrence row (`FOR UPDATE` on PostgreSQL;
SQLite has one writer from BEGIN IMMEDIATE), and a period pool is consumed
with one conditional `UPDATE ... WHERE used < cap RETURNING used`, so neither
a cap nor a pool is ever passed whatever the number of processes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, and_, bindparam, delete, func, insert, or_, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from farebox.catalog.domain import Meter
from farebox.catalog.files import plan_meters
from farebox.storage.hot import Hot
from farebox.storage.ids import new_id
from farebox.storage.immutable_cache import ImmutableRowCache
from farebox.storage.tables.core import plan_versions, tenants
from farebox.storage.tables.metering import (
    conversations,
    metering_settings,
    occurrence_people,
    occurrences,
    usage_counters,
    usage_events,
    usage_records,
)
from farebox.storage.types import UTCDateTime
from farebox.subscriptions import db as subs_repo
from farebox.subscriptions.domain.states import Subscription

_METERS: ImmutableRowCache[dict[str, Meter]] = ImmutableRowCache()
_CARRIED_IN: ImmutableRowCache[int] = ImmutableRowCache()

# The hot path's statements are built once: building a Core statement costs
# ~4x its execution on SQLite (bench/admission.py; docs/performance.md).
_o, _p, _c, _v = occurrences.c, occurrence_people.c, usage_counters.c, conversations.c
_OCC_LOCK = select(occurrences).where(_o.tenant_id == bindparam("_t"), _o.id == bindparam("_id")).with_for_update()
_OCC_UPDATE = update(occurrences).where(_o.tenant_id == bindparam("_t"), _o.id == bindparam("_id"))
_PERSON_GET = select(occurrence_people).where(
    _p.tenant_id == bindparam("_t"), _p.occurrence_id == bindparam("_o"), _p.person_id == bindparam("_p")
)
# SQLite only (one writer from BEGIN IMMEDIATE): the occurrence and one person in one
# statement.  On PostgreSQL the person is read after the lock is held, in a second
# statement: a join's FOR UPDATE would re-check the occurrence after a wait but not
# the person row it read before the wait.
_OCC_WITH_PERSON = (
    select(occurrences, *(c.label(f"_p_{c.name}") for c in occurrence_people.c))
    .select_from(
        occurrences.outerjoin(
            occurrence_people,
            and_(_p.tenant_id == _o.tenant_id, _p.occurrence_id == _o.id, _p.person_id == bindparam("_p")),
        )
    )
    .where(_o.tenant_id == bindparam("_t"), _o.id == bindparam("_id"))
)
_PERSON_UPDATE = update(occurrence_people).where(
    _p.tenant_id == bindparam("_t"), _p.occurrence_id == bindparam("_o"), _p.person_id == bindparam("_p")
)
_PERSON_INSERT = insert(occurrence_people)
_COUNTER_WHERE = and_(
    _c.tenant_id == bindparam("_t"),
    _c.subscription_id == bindparam("_s"),
    _c.meter == bindparam("_m"),
    _c.period_start_at == bindparam("_start"),
)
_COUNTER_GET = select(_c.used, _c.carried_in).where(_COUNTER_WHERE)
_CONSUME = update(usage_counters).where(_COUNTER_WHERE).values(used=_c.used + bindparam("_units")).returning(_c.used)
_CARRIED = _c.carried_in == bindparam("_carried")
_CONSUME_CHECKED = (
    update(usage_counters).where(_COUNTER_WHERE, _CARRIED).values(used=_c.used + bindparam("_units")).returning(_c.used)
)
_CONSUME_CAPPED = (
    update(usage_counters)
    .where(_COUNTER_WHERE, _CARRIED, _c.used + bindparam("_units") <= bindparam("_cap"))
    .values(used=_c.used + bindparam("_units"))
    .returning(_c.used)
)
_RECORD = insert(usage_records)
# The join's own statements run on the driver's cursor (`hot.py`): compiled once per dialect.
_HOT_OCC_LOCK = Hot(_OCC_LOCK)
_HOT_PERSON_GET = Hot(_PERSON_GET)
_HOT_OCC_WITH_PERSON = Hot(_OCC_WITH_PERSON)
_HOT_OCC_UPDATE = Hot(_OCC_UPDATE, by_keys=True)
_HOT_PERSON_UPDATE = Hot(_PERSON_UPDATE, by_keys=True)
_HOT_PERSON_INSERT = Hot(_PERSON_INSERT, by_keys=True)
_HOT_RECORD = Hot(_RECORD, by_keys=True)
_HOT_CONSUME_CAPPED = Hot(_CONSUME_CAPPED)
_HOT_CONSUME_CHECKED = Hot(_CONSUME_CHECKED)
_SETTINGS_GET = select(metering_settings).where(metering_settings.c.tenant_id == bindparam("_t"))
_CONV_LOCK = select(conversations).where(_v.tenant_id == bindparam("_t"), _v.id == bindparam("_id")).with_for_update()
_CONV_UPDATE = update(conversations).where(_v.tenant_id == bindparam("_t"), _v.id == bindparam("_id"))
_EVENT_GET = select(usage_events.c.payload_hash, usage_events.c.result).where(
    usage_events.c.tenant_id == bindparam("_t"),
    usage_events.c.source == bindparam("_src"),
    usage_events.c.id == bindparam("_id"),
)
_EVENT_RESULT = update(usage_events).where(
    usage_events.c.tenant_id == bindparam("_t"),
    usage_events.c.source == bindparam("_src"),
    usage_events.c.id == bindparam("_id"),
)


def _insert(conn: Connection):
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


def meters_of(conn: Connection, plan_version_id: int) -> dict[str, Meter]:
    """The meters a plan version counts (cached: plan versions never change)."""
    def load() -> dict[str, Meter]:
        return plan_meters(
            conn.execute(select(plan_versions.c.document).where(plan_versions.c.id == plan_version_id)).scalar_one()
        )

    return _METERS.get(conn, plan_version_id, load)


# --- occurrences ----------------------------------------------------------------


def lock_occurrence(conn: Connection, tenant_id: str, occurrence_id: str) -> dict[str, Any] | None:
    """The occurrence, row-locked on PostgreSQL (SQLite renders no FOR UPDATE: one writer)."""
    return _HOT_OCC_LOCK.first(conn, {"_t": tenant_id, "_id": occurrence_id})


def lock_occurrence_and_person(
    conn: Connection, tenant_id: str, occurrence_id: str, person_id: str
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """`lock_occurrence` and then `get_person`: one statement on SQLite, two on PostgreSQL."""
    if conn.dialect.name != "sqlite":
        occ = lock_occurrence(conn, tenant_id, occurrence_id)
        return occ, get_person(conn, tenant_id, occurrence_id, person_id) if occ else None
    row = _HOT_OCC_WITH_PERSON.first(conn, {"_t": tenant_id, "_id": occurrence_id, "_p": person_id})
    if row is None:
        return None, None
    occ = {c.name: row[c.name] for c in occurrences.c}
    person = {c.name: row[f"_p_{c.name}"] for c in occurrence_people.c} if row["_p_person_id"] is not None else None
    return occ, person


# A join's first statement: `subscriptions.clock_and_current`'s columns, then the occurrence
# (and on SQLite the person).  On PostgreSQL the occurrence is locked in a CTE (`FOR UPDATE`
# cannot reach the nullable side of an outer join) and the person is read once the lock is held.
_OCC_AS = [c.label(f"_o_{c.name}") for c in occurrences.c]
_FIRST_READ_SQLITE = (
    select(*subs_repo.clock_and_live_columns(), *_OCC_AS, *(c.label(f"_p_{c.name}") for c in occurrence_people.c))
    .select_from(
        subs_repo.clock_and_live_from()
        .outerjoin(occurrences, and_(_o.tenant_id == tenants.c.id, _o.id == bindparam("_id")))
        .outerjoin(
            occurrence_people,
            and_(_p.tenant_id == _o.tenant_id, _p.occurrence_id == _o.id, _p.person_id == bindparam("_p")),
        )
    )
    .where(tenants.c.id == bindparam("tenant_id"))
    .limit(1)
)
_LOCKED = (
    select(occurrences).where(_o.tenant_id == bindparam("tenant_id"), _o.id == bindparam("_id")).with_for_update()
).cte("locked")
_FIRST_READ_LOCKED = (
    select(*subs_repo.clock_and_live_columns(), *(c.label(f"_o_{c.name}") for c in _LOCKED.c))
    .select_from(subs_repo.clock_and_live_from().outerjoin(_LOCKED, true()))
    .where(tenants.c.id == bindparam("tenant_id"))
    .limit(1)
)
_HOT_FIRST_READ_SQLITE = Hot(_FIRST_READ_SQLITE)
_HOT_FIRST_READ_LOCKED = Hot(_FIRST_READ_LOCKED)
_FIRST_WIDTH = len(subs_repo.clock_and_live_columns())


def clock_current_occurrence_and_person(
    conn: Connection, tenant_id: str, occurrence_id: str, person_id: str
) -> tuple[bool, datetime | None, Subscription | None, dict[str, Any] | None, dict[str, Any] | None]:
    """`subscriptions.clock_and_current` and `lock_occurrence_and_person`, in one statement on SQLite
    and two on PostgreSQL (the person after the lock, as there)."""
    sqlite = conn.dialect.name == "sqlite"
    statement = _HOT_FIRST_READ_SQLITE if sqlite else _HOT_FIRST_READ_LOCKED
    params = {"_id": occurrence_id, "_p": person_id} if sqlite else {"_id": occurrence_id}
    exists, clock_now, sub, rest = subs_repo.clock_and_current_with(conn, tenant_id, statement, params)
    if not exists:
        return False, None, None, None, None
    cells = statement.process(conn, rest, start=_FIRST_WIDTH)
    if cells["_o_id"] is None:
        return True, clock_now, sub, None, None
    occ = {c.name: cells[f"_o_{c.name}"] for c in occurrences.c}
    if not sqlite:
        return True, clock_now, sub, occ, get_person(conn, tenant_id, occurrence_id, person_id)
    person = {c.name: cells[f"_p_{c.name}"] for c in occurrence_people.c} if cells["_p_person_id"] is not None else None
    return True, clock_now, sub, occ, person


def create_occurrence(conn: Connection, *, tenant_id: str, occurrence_id: str, now: datetime) -> dict[str, Any]:
    """Insert the occurrence if it is new, then lock and return it."""
    conn.execute(
        _insert(conn)(occurrences)
        .values(tenant_id=tenant_id, id=occurrence_id, counted=0, present=0, peak=0, queue_tail=0, created_at=now)
        .on_conflict_do_nothing(index_elements=["tenant_id", "id"])
    )
    row = lock_occurrence(conn, tenant_id, occurrence_id)
    assert row is not None
    return row


def update_occurrence(conn: Connection, tenant_id: str, occurrence_id: str, **values: Any) -> None:
    _HOT_OCC_UPDATE.run(conn, {"_t": tenant_id, "_id": occurrence_id, **values})


def get_person(conn: Connection, tenant_id: str, occurrence_id: str, person_id: str) -> dict[str, Any] | None:
    return _HOT_PERSON_GET.first(conn, {"_t": tenant_id, "_o": occurrence_id, "_p": person_id})


def put_person(
    conn: Connection, tenant_id: str, occurrence_id: str, person_id: str, *, exists: bool, **values: Any
) -> None:
    if exists:
        _HOT_PERSON_UPDATE.run(conn, {"_t": tenant_id, "_o": occurrence_id, "_p": person_id, **values})
    else:
        row = {"tenant_id": tenant_id, "occurrence_id": occurrence_id, "person_id": person_id}
        _HOT_PERSON_INSERT.run(conn, {**row, "present": False, "host": False, **values})


_LIVE_TICKETS = (
    select(_p.waiting_ticket)
    .where(
        _p.tenant_id == bindparam("_t"),
        _p.occurrence_id == bindparam("_o"),
        _p.waiting_ticket.is_not(None),
        _p.updated_at >= bindparam("_live_since", type_=UTCDateTime),
    )
    .order_by(_p.waiting_ticket)
)


def live_tickets(conn: Connection, tenant_id: str, occurrence_id: str, *, live_since: datetime) -> tuple[int, ...]:
    """The waiting-room tickets re-presented since `live_since`, in queue order (S5): only these hold a place."""
    rows = conn.execute(_LIVE_TICKETS, {"_t": tenant_id, "_o": occurrence_id, "_live_since": live_since})
    return tuple(t for (t,) in rows)


def empty_room(conn: Connection, tenant_id: str, occurrence_id: str, now: datetime) -> None:
    conn.execute(
        update(occurrence_people)
        .where(occurrence_people.c.tenant_id == tenant_id, occurrence_people.c.occurrence_id == occurrence_id)
        .values(present=False, host=False, waiting_ticket=None, updated_at=now)
    )


# --- period counters --------------------------------------------------------------


def counter_key(tenant_id: str, subscription_id: str, meter: str, period_start_at: datetime) -> Any:
    c = usage_counters.c
    return and_(
        c.tenant_id == tenant_id,
        c.subscription_id == subscription_id,
        c.meter == meter,
        c.period_start_at == period_start_at,
    )


def carried_in(
    conn: Connection,
    *,
    tenant_id: str,
    subscription_id: str,
    meter: str,
    period_start_at: datetime,
    period_end_at: datetime,
    fresh: bool = False,
) -> tuple[int, bool]:
    """The units carried into this period's counter (L4), creating the counter if it is new;
    and whether the figure came from the cache.

    `carried_in` is written once, when the counter row is created
    (`ensure_counter`, ON CONFLICT DO NOTHING), so it is cached per database and
    the hot path reads no counter row.  The cache may outlive a rolled-back
    creation: `consume(..., carried_in=...)` therefore only counts on a row that
    exists with that very figure; when a consume with a cached figure is refused,
    the caller asks again with `fresh=True` (re-read, re-created if need be).
    """
    key = (tenant_id, subscription_id, meter, period_start_at)
    if fresh:
        _CARRIED_IN.forget(conn, key)
    loaded: list[bool] = []

    def load() -> int:
        loaded.append(True)
        counter = get_counter(
            conn, tenant_id=tenant_id, subscription_id=subscription_id, meter=meter, period_start_at=period_start_at
        )
        if counter is None:
            counter = ensure_counter(
                conn,
                tenant_id=tenant_id,
                subscription_id=subscription_id,
                meter=meter,
                period_start_at=period_start_at,
                period_end_at=period_end_at,
            )
        return int(counter["carried_in"])

    value = _CARRIED_IN.get(conn, key, load)
    return value, not loaded


def get_counter(
    conn: Connection, *, tenant_id: str, subscription_id: str, meter: str, period_start_at: datetime
) -> dict[str, Any] | None:
    row = (
        conn.execute(_COUNTER_GET, {"_t": tenant_id, "_s": subscription_id, "_m": meter, "_start": period_start_at})
        .mappings()
        .first()
    )
    return dict(row) if row else None


def ensure_counter(
    conn: Connection,
    *,
    tenant_id: str,
    subscription_id: str,
    meter: str,
    period_start_at: datetime,
    period_end_at: datetime,
    carried_in: int = 0,
) -> dict[str, Any]:
    conn.execute(
        _insert(conn)(usage_counters)
        .values(
            tenant_id=tenant_id,
            subscription_id=subscription_id,
            meter=meter,
            period_start_at=period_start_at,
            period_end_at=period_end_at,
            used=0,
            carried_in=carried_in,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "subscription_id", "meter", "period_start_at"])
    )
    return dict(
        conn.execute(select(usage_counters).where(counter_key(tenant_id, subscription_id, meter, period_start_at)))
        .mappings()
        .one()
    )


def consume(
    conn: Connection,
    *,
    tenant_id: str,
    subscription_id: str,
    meter: str,
    period_start_at: datetime,
    cap: int | None,
    units: int = 1,
    carried_in: int | None = None,
) -> int | None:
    """Add units unless that passes `cap`; the new total, or None when refused (one atomic statement).

    With `carried_in` (the figure `cap` was computed from), a counter that does not
    exist or carries another figure is refused too: the caller re-reads it.
    """
    params = {
        "_t": tenant_id,
        "_s": subscription_id,
        "_m": meter,
        "_start": period_start_at,
        "_units": units,
        "_carried": carried_in,
    }
    if cap is not None:
        assert carried_in is not None, "a capped consume states the carried figure its cap came from"
        found = _HOT_CONSUME_CAPPED.first(conn, {**params, "_cap": cap})
        return None if found is None else int(found["used"])
    if carried_in is not None:  # an uncapped pool (overage) on the hot path
        found = _HOT_CONSUME_CHECKED.first(conn, params)
        return None if found is None else int(found["used"])
    row = conn.execute(_CONSUME, params).first()
    return None if row is None else row[0]


# PostgreSQL: a counted join's writes in one statement (one round trip).  The guarded update of
# the pool is a data-modifying CTE; the ledger row, the person and the occurrence are written
# only from its RETURNING row, so a guard that refuses writes nothing and returns no row.
_TAKE_AND_WRITE: dict[tuple[bool, bool, tuple[str, ...], tuple[str, ...]], Hot] = {}
_RECORD_COLUMNS = (
    "tenant_id", "id", "subscription_id", "meter", "period_start_at", "subject", "person_id", "units", "at", "cause",
)


def _take_and_write(capped: bool, person_exists: bool, person: tuple[str, ...], room: tuple[str, ...]) -> Hot:
    shape = (capped, person_exists, person, room)
    found = _TAKE_AND_WRITE.get(shape)
    if found is not None:
        return found
    guard = [_COUNTER_WHERE, _CARRIED]
    if capped:
        guard.append(_c.used + bindparam("_units") <= bindparam("_cap"))
    taken = update(usage_counters).where(*guard).values(used=_c.used + bindparam("_units")).returning(_c.used)
    taken_cte = taken.cte("taken")
    if_taken = select(taken_cte.c.used).exists()

    def binds(table: Any, prefix: str, keys: tuple[str, ...]) -> list[Any]:
        return [bindparam(f"{prefix}{k}", type_=table.c[k].type) for k in keys]

    recorded = insert(usage_records).from_select(
        list(_RECORD_COLUMNS), select(*binds(usage_records, "r_", _RECORD_COLUMNS)).select_from(taken_cte)
    )
    person_where = (
        _p.tenant_id == bindparam("_t"), _p.occurrence_id == bindparam("_id"), _p.person_id == bindparam("_p")
    )
    person_cte: Any
    if person_exists:
        person_cte = (
            update(occurrence_people).where(*person_where, if_taken)
            .values({k: b for k, b in zip(person, binds(occurrence_people, "p_", person), strict=True)})
        )
    else:
        columns = ("tenant_id", "occurrence_id", "person_id", *person)
        keys = [bindparam(k, type_=String) for k in ("_t", "_id", "_p")]
        values = [*keys, *binds(occurrence_people, "p_", person)]
        person_cte = insert(occurrence_people).from_select(list(columns), select(*values).select_from(taken_cte))
    ctes = [recorded.cte("recorded"), person_cte.cte("person")]
    if room:
        room_update = (
            update(occurrences).where(_o.tenant_id == bindparam("_t"), _o.id == bindparam("_id"), if_taken)
            .values({k: b for k, b in zip(room, binds(occurrences, "o_", room), strict=True)})
        )
        ctes.append(room_update.cte("room"))
    found = _TAKE_AND_WRITE[shape] = Hot(select(taken_cte.c.used).add_cte(*ctes))
    return found


def take_and_write(
    conn: Connection,
    *,
    tenant_id: str,
    subscription_id: str,
    meter: str,
    period_start_at: datetime,
    cap: int | None,
    carried_in: int,
    occurrence_id: str,
    person_id: str,
    person_exists: bool,
    person: dict[str, Any],
    room: dict[str, Any],
    record: dict[str, Any],
) -> int | None:
    """PostgreSQL: `consume` one unit (guarded as there), and only if it was taken its ledger row
    (`record`), the person (`put_person`) and the occurrence (`update_occurrence`), in one
    statement.  The new total, or None when nothing was taken (and nothing written)."""
    if not person_exists:
        person = {"present": False, "host": False, **person}
    statement = _take_and_write(cap is not None, person_exists, tuple(sorted(person)), tuple(sorted(room)))
    params: dict[str, Any] = {
        "_t": tenant_id, "_s": subscription_id, "_m": meter, "_start": period_start_at, "_units": 1,
        "_carried": carried_in, "_id": occurrence_id, "_p": person_id,
        **{f"r_{k}": v for k, v in {"id": new_id("use"), "units": 1, **record}.items()},
        **{f"p_{k}": v for k, v in person.items()},
        **{f"o_{k}": v for k, v in room.items()},
    }
    if cap is not None:
        params["_cap"] = cap
    found = statement.first(conn, params)
    return None if found is None else int(found["used"])


def mark_trial_exhausted(
    conn: Connection, *, tenant_id: str, subscription_id: str, meter: str, period_start_at: datetime, now: datetime
) -> bool:
    """Set the flag once; True for the one caller that set it."""
    row = conn.execute(
        update(usage_counters)
        .where(
            counter_key(tenant_id, subscription_id, meter, period_start_at),
            usage_counters.c.trial_exhausted_at.is_(None),
        )
        .values(trial_exhausted_at=now)
        .returning(usage_counters.c.meter)
    ).first()
    return row is not None


def counters_for(
    conn: Connection, tenant_id: str, subscription_id: str, period_start_at: datetime
) -> list[dict[str, Any]]:
    c = usage_counters.c
    rows = conn.execute(
        select(usage_counters).where(
            c.tenant_id == tenant_id, c.subscription_id == subscription_id, c.period_start_at == period_start_at
        )
    )
    return [dict(r) for r in rows.mappings()]


def counters_at(conn: Connection, tenant_id: str, at: datetime) -> list[dict[str, Any]]:
    """Every counter of the tenant whose period holds `at` (each subscription's pool of that moment)."""
    c = usage_counters.c
    rows = conn.execute(
        select(usage_counters).where(c.tenant_id == tenant_id, c.period_start_at <= at, c.period_end_at > at)
    )
    return [dict(r) for r in rows.mappings()]


def counters_of_many(conn: Connection, periods: list[tuple[str, str, datetime]]) -> list[dict[str, Any]]:
    """`counters_for` of many (tenant, subscription, period start) in one statement."""
    if not periods:
        return []
    wanted = set(periods)
    rows = conn.execute(select(usage_counters).where(_c.subscription_id.in_([p[1] for p in periods]))).mappings()
    return [dict(r) for r in rows if (r["tenant_id"], r["subscription_id"], r["period_start_at"]) in wanted]


def latest_counters(conn: Connection, tenant_id: str, subscription_id: str) -> list[dict[str, Any]]:
    """The counters of a subscription's latest period (one per meter)."""
    c = usage_counters.c
    latest = conn.execute(
        select(func.max(c.period_start_at)).where(c.tenant_id == tenant_id, c.subscription_id == subscription_id)
    ).scalar()
    return [] if latest is None else counters_for(conn, tenant_id, subscription_id, latest)


def used_between(
    conn: Connection, tenant_id: str, subscription_id: str, start: datetime, end: datetime
) -> dict[str, int]:
    c = usage_counters.c
    rows = conn.execute(
        select(c.meter, func.sum(c.used))
        .where(
            c.tenant_id == tenant_id,
            c.subscription_id == subscription_id,
            c.period_start_at >= start,
            c.period_start_at < end,
        )
        .group_by(c.meter)
    )
    return {meter: int(total or 0) for meter, total in rows}


def counters_between(
    conn: Connection, tenant_id: str, subscription_id: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    c = usage_counters.c
    rows = conn.execute(
        select(usage_counters).where(
            c.tenant_id == tenant_id,
            c.subscription_id == subscription_id,
            c.period_start_at >= start,
            c.period_start_at < end,
        )
    )
    return [dict(r) for r in rows.mappings()]


# --- the ledger (G3) -----------------------------------------------------------------


def record(conn: Connection, **values: Any) -> None:
    _HOT_RECORD.run(conn, {"id": new_id("use"), "units": 1, **values})


def daily(
    conn: Connection, tenant_id: str, subscription_id: str, period_start_at: datetime
) -> list[tuple[str, str, int]]:
    r = usage_records.c
    if conn.dialect.name == "sqlite":
        day = func.substr(r.at, 1, 10, type_=String)
    else:
        day = func.to_char(func.timezone("UTC", r.at), "YYYY-MM-DD", type_=String)
    rows = conn.execute(
        select(day.label("day"), r.meter, func.sum(r.units))
        .where(r.tenant_id == tenant_id, r.subscription_id == subscription_id, r.period_start_at == period_start_at)
        .group_by(day, r.meter)
        .order_by(day)
    )
    return [(d, m, int(n)) for d, m, n in rows]


# --- conversations (A1, A2) ----------------------------------------------------------


def lock_conversation(conn: Connection, tenant_id: str, conversation_id: str) -> dict[str, Any] | None:
    row = conn.execute(_CONV_LOCK, {"_t": tenant_id, "_id": conversation_id}).mappings().first()
    return dict(row) if row else None


def insert_conversation(conn: Connection, **values: Any) -> bool:
    stmt = _insert(conn)(conversations).values(**values).on_conflict_do_nothing(index_elements=["tenant_id", "id"])
    return conn.execute(stmt.returning(conversations.c.id)).first() is not None


def update_conversation(conn: Connection, tenant_id: str, conversation_id: str, **values: Any) -> None:
    conn.execute(_CONV_UPDATE, {"_t": tenant_id, "_id": conversation_id, **values})


def top(conn: Connection, tenant_id: str, limit: int) -> list[dict[str, Any]]:
    """The largest occurrences and conversations over all time, from their event data (gone after G14's purge)."""
    occ = conn.execute(
        select(occurrences.c.id, occurrences.c.counted, occurrences.c.started_at)
        .where(occurrences.c.tenant_id == tenant_id)
        .order_by(occurrences.c.counted.desc(), occurrences.c.id)
        .limit(limit)
    )
    conv = conn.execute(
        select(conversations.c.id, conversations.c.billable, conversations.c.first_message_at)
        .where(conversations.c.tenant_id == tenant_id, conversations.c.windows > 0)
        .order_by(conversations.c.billable.desc(), conversations.c.id)
        .limit(limit)
    )
    items = [{"kind": "occurrence", "id": i, "units": n, "at": at} for i, n, at in occ]
    items += [{"kind": "conversation", "id": i, "units": n, "at": at} for i, n, at in conv]
    return sorted(items, key=lambda x: (-x["units"], x["id"]))[:limit]


def top_in_period(
    conn: Connection, tenant_id: str, subscription_id: str, period_start_at: datetime, limit: int
) -> list[dict[str, Any]]:
    """The largest occurrences and conversations by units counted in one period (not all-time):
    per subject, its largest meter (a person counted as an attendee and as a credit is one unit);
    only those whose event data is still there (G14's purge deletes it)."""
    r = usage_records.c
    rows = conn.execute(
        select(r.subject, r.meter, func.sum(r.units), func.min(r.at))
        .where(r.tenant_id == tenant_id, r.subscription_id == subscription_id, r.period_start_at == period_start_at)
        .group_by(r.subject, r.meter)
    )
    best: dict[str, tuple[int, datetime]] = {}
    for subject, _meter, units, first_at in rows:
        if subject not in best or int(units) > best[subject][0]:
            best[subject] = (int(units), first_at)
    items: list[dict[str, Any]] = []
    for subject, (units, first_at) in best.items():
        kind, _, item_id = subject.partition(":")
        items.append({"kind": kind, "id": item_id, "units": units, "at": first_at})
    items.sort(key=lambda x: (-x["units"], x["id"]))
    kept: list[dict[str, Any]] = []
    for start in range(0, len(items), 4 * limit):
        chunk = items[start:start + 4 * limit]
        present = _present(conn, tenant_id, chunk)
        kept += [item for item in chunk if (item["kind"], item["id"]) in present]
        if len(kept) >= limit:
            break
    return kept[:limit]


def _present(conn: Connection, tenant_id: str, items: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """Which of these occurrences and conversations still have their rows."""
    found: set[tuple[str, str]] = set()
    for kind, table in (("occurrence", occurrences), ("conversation", conversations)):
        ids = [item["id"] for item in items if item["kind"] == kind]
        if ids:
            rows = conn.execute(select(table.c.id).where(table.c.tenant_id == tenant_id, table.c.id.in_(ids)))
            found.update((kind, row_id) for (row_id,) in rows)
    return found


# --- received usage events (G4) ---------------------------------------------------------


def get_event(conn: Connection, tenant_id: str, source: str, event_id: str) -> dict[str, Any] | None:
    row = conn.execute(_EVENT_GET, {"_t": tenant_id, "_src": source, "_id": event_id}).mappings().first()
    return dict(row) if row else None


def claim_event(conn: Connection, **values: Any) -> bool:
    """Record an event's first arrival; False if (tenant, source, id) was seen already."""
    stmt = (
        _insert(conn)(usage_events)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["tenant_id", "source", "id"])
    )
    return conn.execute(stmt.returning(usage_events.c.id)).first() is not None


def set_event_result(conn: Connection, tenant_id: str, source: str, event_id: str, result: dict[str, Any]) -> None:
    conn.execute(_EVENT_RESULT, {"_t": tenant_id, "_src": source, "_id": event_id, "result": result})


# --- per-tenant settings (A6, S5) ----------------------------------------------------------


def settings(conn: Connection, tenant_id: str) -> dict[str, Any]:
    row = conn.execute(_SETTINGS_GET, {"_t": tenant_id}).mappings().first()
    return (
        dict(row)
        if row
        else {
            "tenant_id": tenant_id,
            "session_limit": None,
            "upgrade_required_peak": None,
            "upgrade_required_meter": None,
        }
    )


def settings_of_many(conn: Connection, tenant_ids: list[str]) -> dict[str, dict[str, Any]]:
    """`settings` of many tenants in one statement (tenants without a row are absent)."""
    rows = conn.execute(select(metering_settings).where(metering_settings.c.tenant_id.in_(tenant_ids))).mappings()
    return {r["tenant_id"]: dict(r) for r in rows}


def put_settings(conn: Connection, tenant_id: str, now: datetime, **values: Any) -> None:
    conn.execute(
        _insert(conn)(metering_settings)
        .values(tenant_id=tenant_id, updated_at=now, **values)
        .on_conflict_do_update(index_elements=["tenant_id"], set_={"updated_at": now, **values})
    )


# --- verification (G3) and retention (G14) ---------------------------------------------------


def counter_differences(conn: Connection, tenant_id: str | None = None) -> list[dict[str, Any]]:
    """Every counter whose total differs from the sum of its ledger rows."""
    c, r = usage_counters.c, usage_records.c
    sums = (
        select(r.tenant_id, r.subscription_id, r.meter, r.period_start_at, func.sum(r.units).label("units"))
        .group_by(r.tenant_id, r.subscription_id, r.meter, r.period_start_at)
        .subquery()
    )
    query = select(c.tenant_id, c.subscription_id, c.meter, c.period_start_at, c.used, sums.c.units).select_from(
        usage_counters.outerjoin(
            sums,
            and_(
                sums.c.tenant_id == c.tenant_id,
                sums.c.subscription_id == c.subscription_id,
                sums.c.meter == c.meter,
                sums.c.period_start_at == c.period_start_at,
            ),
        )
    )
    if tenant_id is not None:
        query = query.where(c.tenant_id == tenant_id)
    found = []
    for row in conn.execute(query).mappings():
        if int(row["units"] or 0) != row["used"]:
            found.append({"what": "counter", **dict(row), "recomputed": int(row["units"] or 0)})
    # ledger rows whose counter is missing
    orphan = select(sums).where(
        ~select(c.meter)
        .where(
            c.tenant_id == sums.c.tenant_id,
            c.subscription_id == sums.c.subscription_id,
            c.meter == sums.c.meter,
            c.period_start_at == sums.c.period_start_at,
        )
        .exists()
    )
    for row in conn.execute(orphan).mappings():
        found.append({"what": "counter", **dict(row), "used": 0, "recomputed": int(row["units"])})
    return found


def occurrence_differences(conn: Connection, tenant_id: str | None = None) -> list[dict[str, Any]]:
    o, p = occurrences.c, occurrence_people.c
    counted = (
        select(func.count())
        .where(p.tenant_id == o.tenant_id, p.occurrence_id == o.id, p.counted_at.is_not(None))
        .scalar_subquery()
    )
    query = select(o.tenant_id, o.id, o.counted, counted.label("recomputed"))
    if tenant_id is not None:
        query = query.where(o.tenant_id == tenant_id)
    return [
        {"what": "occurrence", **dict(r)} for r in conn.execute(query).mappings() if r["counted"] != r["recomputed"]
    ]


def conversation_differences(conn: Connection, tenant_id: str | None = None) -> list[dict[str, Any]]:
    v, r = conversations.c, usage_records.c
    billed = (
        select(func.coalesce(func.sum(r.units), 0))
        .where(r.tenant_id == v.tenant_id, r.subject == "conversation:" + v.id)
        .scalar_subquery()
    )
    query = select(v.tenant_id, v.id, v.billable, billed.label("recomputed"))
    if tenant_id is not None:
        query = query.where(v.tenant_id == tenant_id)
    return [
        {"what": "conversation", **dict(r)} for r in conn.execute(query).mappings() if r["billable"] != r["recomputed"]
    ]


def purge_events(conn: Connection, tenant_id: str, before: datetime) -> dict[str, int]:
    """G14: delete the tenant's event data older than `before`; the ledger and counters stay (billing records)."""
    done: dict[str, int] = {}
    old = select(occurrences.c.id).where(
        occurrences.c.tenant_id == tenant_id,
        func.coalesce(occurrences.c.ended_at, occurrences.c.deadline_at, occurrences.c.created_at) < before,
    )
    done["occurrence_people"] = conn.execute(
        delete(occurrence_people).where(
            occurrence_people.c.tenant_id == tenant_id, occurrence_people.c.occurrence_id.in_(old)
        )
    ).rowcount
    done["occurrences"] = conn.execute(
        delete(occurrences).where(
            occurrences.c.tenant_id == tenant_id,
            func.coalesce(occurrences.c.ended_at, occurrences.c.deadline_at, occurrences.c.created_at) < before,
        )
    ).rowcount
    done["conversations"] = conn.execute(
        delete(conversations).where(conversations.c.tenant_id == tenant_id, conversations.c.last_message_at < before)
    ).rowcount
    done["usage_events"] = conn.execute(
        delete(usage_events).where(usage_events.c.tenant_id == tenant_id, usage_events.c.received_at < before)
    ).rowcount
    done["people_forgotten"] = conn.execute(
        update(usage_records)
        .where(
            usage_records.c.tenant_id == tenant_id, usage_records.c.at < before, usage_records.c.person_id.is_not(None)
        )
        .values(person_id=None)
    ).rowcount
    return done


def fullest_occurrences(
    conn: Connection, periods: list[tuple[str, str, datetime]]
) -> dict[tuple[str, str], tuple[int, int]]:
    """Per (tenant, subscription): the most attendees counted in one occurrence started since the period start, and
    the most present at once; one statement for many."""
    if not periods:
        return {}
    since = or_(*(and_(_o.tenant_id == t, _o.subscription_id == s, _o.started_at >= start) for t, s, start in periods))
    rows = conn.execute(
        select(_o.tenant_id, _o.subscription_id, func.max(_o.counted), func.max(_o.peak))
        .where(since)
        .group_by(_o.tenant_id, _o.subscription_id)
    ).all()
    return {(t, s): (int(counted or 0), int(peak or 0)) for t, s, counted, peak in rows}
