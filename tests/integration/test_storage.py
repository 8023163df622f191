"""Storage on SQLite and PostgreSQL: migrations, tenant-first keys, UTC."""

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from farebox.storage.engine import make_engine
from farebox.storage.migrate import pending_differences
from farebox.storage.tables import metadata
from farebox.storage.tables.core import test_clocks

GLOBAL_TABLES = {
    "catalogs",
    "plan_versions",
    "test_clocks",
    "api_keys",
    "portal_sign_in_links",
    "portal_sessions",
    "portal_link_requests",
    "alembic_version",
    "provider_events",  # a provider webhook names no tenant
}


def test_migrations_create_exactly_the_tables_in_code(db_url):
    engine = make_engine(db_url)
    try:
        assert pending_differences(engine) == []
    finally:
        engine.dispose()


def test_every_tenant_table_has_tenant_id_first_in_its_keys():
    for table in metadata.sorted_tables:
        if table.name in GLOBAL_TABLES:
            continue
        pk = [c.name for c in table.primary_key.columns]
        assert pk[0] in ("tenant_id", "scope", "id"), table.name
        if table.name == "tenants":
            continue
        assert pk[0] in ("tenant_id", "scope"), f"{table.name}: key {pk}"
        for constraint in table.constraints:
            columns = [c.name for c in getattr(constraint, "columns", [])]
            if columns and constraint.__class__.__name__ == "UniqueConstraint":
                assert columns[0] == "tenant_id", f"{table.name}: unique {columns}"


def test_G2_datetimes_come_back_as_aware_utc(fb):
    plus_five = timezone(timedelta(hours=5))
    instant = datetime(2026, 3, 1, 5, 30, tzinfo=plus_five)
    with fb.uow() as uow:
        uow.conn.execute(test_clocks.insert().values(id="c1", name="c", now_at=instant, created_at=instant))
        uow.commit()
    with fb.uow(readonly=True) as uow:
        stored = uow.conn.execute(select(test_clocks.c.now_at)).scalar_one()
    assert stored == instant and stored.tzinfo is not None and stored.utcoffset() == timedelta(0)


def test_unit_of_work_without_commit_writes_nothing(fb):
    now = fb.clock.now()
    with fb.uow() as uow:
        uow.conn.execute(test_clocks.insert().values(id="c2", name="c", now_at=now, created_at=now))
    with fb.uow(readonly=True) as uow:
        assert uow.conn.execute(select(test_clocks.c.id)).all() == []
