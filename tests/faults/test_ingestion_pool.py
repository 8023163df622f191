"""F2: bulk ingestion never stalls live admission.  A batch is applied in short transactions, the
connection pool is sized by settings, and a request that finds no free connection answers 503
`storage_unavailable` with Retry-After, like any other storage fault."""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

from fastapi.testclient import TestClient

from farebox.bootstrap import Farebox
from farebox.entrypoints.api.app import create_app
from farebox.kernel.access import SYSTEM
from farebox.metering.services import admission, ingestion, usage
from farebox.settings import Settings
from farebox.storage.engine import PoolSettings, make_engine

from factories import make_tenant

OPERATOR = {"Authorization": "Bearer test-operator-key"}


def test_F2_the_pool_is_sized_by_settings_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FAREBOX_DB_POOL_SIZE", "3")
    monkeypatch.setenv("FAREBOX_DB_MAX_OVERFLOW", "2")
    monkeypatch.setenv("FAREBOX_DB_POOL_TIMEOUT", "0.5")
    settings = Settings.from_env()
    assert settings.pool == PoolSettings(size=3, max_overflow=2, timeout=0.5)
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}", pool_settings=settings.pool)
    pool: Any = engine.pool
    assert (pool.size(), pool._max_overflow, pool._timeout) == (3, 2, 0.5)
    engine.dispose()


def test_F2_a_request_that_finds_no_free_connection_answers_503_with_retry_after(fb, db_url):
    make_tenant(fb, tenant_id="busy", catalog="attendee-credits", plan="pro")
    engine = make_engine(db_url, pool_settings=PoolSettings(size=1, max_overflow=0, timeout=0.2))
    small = Farebox(
        engine=engine, clock=fb.clock, settings=Settings(database_url=db_url, operator_key="test-operator-key")
    )
    client = TestClient(create_app(small), raise_server_exceptions=False)
    held = engine.connect()  # the pool's only connection, busy elsewhere
    try:
        r = client.post("/v1/tenants/busy/occurrences/o1/join", json={"person_id": "a"}, headers=OPERATOR)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "storage_unavailable" and r.headers["Retry-After"] == "1"
    finally:
        held.close()
    r = client.post("/v1/tenants/busy/occurrences/o1/join", json={"person_id": "a"}, headers=OPERATOR)
    assert r.status_code == 200 and r.json()["counted"] is True
    engine.dispose()


def test_F2_a_10000_event_batch_does_not_stall_live_joins_of_its_tenant_or_of_another(fb):
    make_tenant(fb, tenant_id="bulk", catalog="attendee-credits", plan="enterprise")  # overage: every join counts
    make_tenant(fb, tenant_id="live", catalog="attendee-credits", plan="enterprise")
    events = [
        {
            "id": f"e{i}",
            "source": "logs",
            "type": "attendee.joined",
            "data": {"occurrence_id": f"o{i % 100}", "person_id": f"p{i}"},
        }
        for i in range(10_000)
    ]
    waits: dict[str, list[float]] = {"bulk": [], "live": []}
    span: dict[str, float] = {}
    done = threading.Event()

    def batch() -> None:
        span["start"] = time.perf_counter()
        try:
            report = ingestion.ingest(fb, SYSTEM, "bulk", events)
            assert report.counted == 10_000
        finally:
            span["end"] = time.perf_counter()
            done.set()

    worker = threading.Thread(target=batch)
    worker.start()
    n = 0
    while not done.is_set():
        for tenant_id in ("bulk", "live"):
            t0 = time.perf_counter()
            decision = admission.join(fb, SYSTEM, tenant_id, "live-room", f"live-{n}", mode="live")
            waits[tenant_id].append(time.perf_counter() - t0)
            assert decision.counted
        n += 1
    worker.join()
    during = len(waits["live"])
    assert during >= 3, f"the batch took {span['end'] - span['start']:.2f}s: too short to measure anything"
    for tenant_id, samples in waits.items():
        worst = max(samples)
        assert worst < 2.0, (
            f"{tenant_id}: a live join waited {worst:.2f}s behind the batch "
            f"({len(samples)} joins, median {statistics.median(samples):.3f}s)"
        )
    assert usage.verify(fb, SYSTEM) == []
