"""Ready for a database distributed by tenant (issue 16 item 7; docs/deployment.md, "From one
database to a distributed one"): every tenant table's keys and indexes start with `tenant_id`,
and every statement of the hot path (admissions, ingestion, usage reads) names one tenant, so a
sharded PostgreSQL (Citus, `tenant_id` as distribution column) routes it to one node."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from farebox.kernel.access import SYSTEM
from farebox.metering.services import admission, ingestion, usage
from farebox.storage.tables import metadata

from factories import make_tenant

# Looked up before the tenant is known (by a secret's hash), or shared by every tenant: reference
# tables on a distributed database (or kept on the coordinator).
REFERENCE_TABLES = {
    "catalogs", "plan_versions", "test_clocks", "api_keys", "portal_sign_in_links", "portal_sessions",
    "portal_link_requests",  # rate limits counted before the tenant is known (F10)
    "provider_events",  # a provider webhook names no tenant
}
# Keyed by `scope`: a tenant id, or the operator's scope; distributed by `scope` like `tenant_id`.
SCOPED_TABLES = {"invoice_sequences", "notification_channels", "webhook_endpoints"}
# The worker's scans over every tenant (what is due, what is to deliver): they run on every node
# and take each row by its full key afterwards (docs/deployment.md).  Never on the hot path.
CROSS_TENANT_INDEXES = {
    "ix_due_items_pending", "ix_deliveries_pending", "ix_deliveries_id", "ix_tenants_test_clock_id",
    "ix_idempotency_keys_created_at",  # the retention sweep (F14)
}


def _distribution_column(table_name: str) -> str:
    return "id" if table_name == "tenants" else "scope" if table_name in SCOPED_TABLES else "tenant_id"


def test_issue16_every_tenant_table_key_unique_key_and_index_starts_with_its_tenant():
    tables = [t for t in metadata.sorted_tables if t.name not in REFERENCE_TABLES]
    assert {t.name for t in tables} >= {
        "usage_records",
        "usage_counters",
        "occurrences",
        "occurrence_people",
        "invoices",
    }
    for table in tables:
        first = _distribution_column(table.name)
        assert [c.name for c in table.primary_key.columns][0] == first, f"{table.name}: primary key"
        for constraint in table.constraints:
            if constraint.__class__.__name__ == "UniqueConstraint":
                assert [c.name for c in constraint.columns][0] == first, f"{table.name}: {constraint.name}"
        for index in table.indexes:
            if index.name in CROSS_TENANT_INDEXES:
                continue
            assert [c.name for c in index.columns][0] == first, (
                f"{table.name}: index {index.name} must start with {first}"
            )


@contextmanager
def _statements(engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001 (SQLAlchemy's hook)
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", capture)


_TABLE = re.compile(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+\"?(\w+)\"?", re.IGNORECASE)
_TENANT_NAMED = re.compile(r"\b(?:\w+\.)?(?:tenant_id|scope)\s*(?:=|IN\b)|\btenants\.id\s*=", re.IGNORECASE)


def _unrouted(statements: list[str]) -> list[str]:
    """Statements that touch a tenant table without naming the tenant (an INSERT names it in its values)."""
    out = []
    for sql in statements:
        if sql.split(" ", 1)[0].upper() not in ("SELECT", "UPDATE", "DELETE", "INSERT", "WITH"):
            continue
        tables = {t.lower() for t in _TABLE.findall(sql)} - REFERENCE_TABLES - {"tenants"}
        if not tables:
            continue
        if sql.upper().startswith("INSERT"):
            if "tenant_id" not in sql and "scope" not in sql:
                out.append(sql)
        elif not _TENANT_NAMED.search(sql.split(" WHERE ", 1)[-1] if " WHERE " in sql else sql.partition(" ON ")[2]):
            out.append(sql)
    return out


def test_issue16_hot_path_statements_each_name_their_tenant(fb):
    make_tenant(fb, tenant_id="web", catalog="attendee-credits", plan="pro")
    make_tenant(fb, tenant_id="bots", catalog="agent-sessions", plan="sme")
    admission.start_occurrence(fb, SYSTEM, "web", "o1")  # warm the plan caches: the hot path is what follows
    with _statements(fb.engine) as seen:
        admission.start_occurrence(fb, SYSTEM, "web", "o2")
        for person in ("a", "b", "a"):
            admission.join(fb, SYSTEM, "web", "o2", person)
        admission.register(fb, SYSTEM, "web", "o2", "c")
        admission.leave(fb, SYSTEM, "web", "o2", "a")
        admission.message(fb, SYSTEM, "bots", "c1", sender="customer")
        admission.message(fb, SYSTEM, "bots", "c1", sender="agent")
        ingestion.ingest(
            fb,
            SYSTEM,
            "bots",
            [
                {
                    "id": "e1",
                    "source": "s",
                    "type": "conversation.message",
                    "data": {"conversation_id": "c2", "from": "customer"},
                },
            ],
        )
        usage.usage_summary(fb, SYSTEM, "bots")
    assert len(seen) > 10
    assert _unrouted(seen) == []


def test_issue16_the_statement_check_catches_a_statement_across_tenants():
    assert _unrouted(["SELECT usage_records.id FROM usage_records WHERE usage_records.meter = ?"]) != []
    assert _unrouted(["UPDATE usage_counters SET used=(usage_counters.used + ?)"]) != []
    assert _unrouted(["INSERT INTO occurrences (id, deadline_at) VALUES (?, ?)"]) != []
    assert (
        _unrouted(
            ["SELECT usage_records.id FROM usage_records WHERE usage_records.tenant_id = ? AND usage_records.meter = ?"]
        )
        == []
    )
