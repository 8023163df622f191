"""Fault tests (issue 9, G4): a dropped database connection fails the request
cleanly, writes nothing, and a retry with the same Idempotency-Key succeeds once."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from farebox.entrypoints.api.app import create_app
from farebox.events import signals
from farebox.kernel.access import SYSTEM
from farebox.storage.engine import normalise_url
from farebox.tenants.services import tenants

OPERATOR = {"Authorization": "Bearer test-operator-key"}


@pytest.fixture
def pg_fb(fb):
    if fb.engine.dialect.name != "postgresql":
        pytest.skip("dropping a server connection needs PostgreSQL")
    return fb


def test_G4_connection_dropped_mid_request_fails_cleanly_and_a_retry_succeeds_once(pg_fb):
    fb = pg_fb
    admin = create_engine(normalise_url(fb.settings.database_url), isolation_level="AUTOCOMMIT")
    dropped = []

    @signals.on("tenant.created")
    def _drop_the_connection(uow, signal):
        # Half-way through the transaction (tenant and owner inserted, not committed),
        # the server ends this request's connection.
        if not dropped:
            pid = uow.conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            with admin.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            dropped.append(pid)

    try:
        with TestClient(create_app(fb), raise_server_exceptions=False) as client:
            body = {"id": "acme", "name": "Acme", "owner_email": "o@acme.test"}
            headers = {**OPERATOR, "Idempotency-Key": "create-acme-1"}
            first = client.post("/v1/tenants", json=body, headers=headers)
            assert first.status_code == 503, first.text
            assert first.json()["error"]["code"] == "storage_unavailable" and first.headers["Retry-After"] == "1"
            assert dropped
            assert tenants.list_tenants(fb, SYSTEM) == []  # nothing half-written
            second = client.post("/v1/tenants", json=body, headers=headers)
            assert second.status_code == 201, second.text
            third = client.post("/v1/tenants", json=body, headers=headers)
            assert third.status_code == 201 and third.headers.get("Idempotent-Replayed") == "true"
            assert [t["id"] for t in tenants.list_tenants(fb, SYSTEM)] == ["acme"]
            assert len(tenants.list_members(fb, SYSTEM, "acme")) == 1
    finally:
        signals._LISTENERS["tenant.created"].remove(_drop_the_connection)
        admin.dispose()


def test_G4_a_request_losing_the_idempotency_key_race_gets_the_first_answer_and_changes_nothing(fb, monkeypatch):
    """Two requests with one Idempotency-Key, the second checking for the key before the first
    committed: the second's insert of the key fails; its own change is rolled back and it answers
    with the first answer (it answered 500 before; tests/scaleout found it on PostgreSQL)."""
    from farebox.metering.services import usage
    from farebox.storage import idempotency as idem_repo

    from factories import make_tenant

    make_tenant(fb, tenant_id="acme", catalog="agent-sessions", plan="sme")
    headers = {**OPERATOR, "Idempotency-Key": "message-1"}
    with TestClient(create_app(fb), raise_server_exceptions=False) as client:
        first = client.post("/v1/tenants/acme/conversations/c1/messages", json={"from": "customer"}, headers=headers)
        assert first.status_code == 200 and first.json()["counted"] is True
        real_get, calls = idem_repo.get, []

        def not_yet_visible(conn, *scope_and_key):  # the first request had not committed when the second looked
            calls.append(scope_and_key)
            return None if len(calls) == 1 else real_get(conn, *scope_and_key)

        monkeypatch.setattr(idem_repo, "get", not_yet_visible)
        second = client.post("/v1/tenants/acme/conversations/c1/messages", json={"from": "customer"}, headers=headers)
    assert second.status_code == 200, second.text
    assert second.json() == first.json() and second.headers.get("Idempotent-Replayed") == "true"
    (conversation,) = usage.top_usage(fb, SYSTEM, "acme", 10)
    assert conversation.units == 1
    assert usage.verify(fb, SYSTEM, "acme") == []
