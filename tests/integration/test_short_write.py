"""A decision over HTTP runs on the event loop when SQLite's write lock is free at once, and on a worker thread
when it is not (docs/performance.md, "HTTP without waiting"): the loop never sleeps on a lock, and a decision
that had to wait is still made exactly once (G4).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from farebox.bootstrap import Farebox
from farebox.entrypoints.api.app import create_app
from farebox.entrypoints.api.deps import short_write
from farebox.kernel.access import SYSTEM
from farebox.metering.services import admission, usage
from farebox.settings import Settings
from farebox.storage.engine import PoolSettings, WouldWait, free_connections, make_engine, short_writes, without_waiting

from factories import make_tenant

OPERATOR = {"Authorization": "Bearer test-operator-key"}
pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # SQLite's write lock; none on PostgreSQL


@pytest.fixture
def sqlite_fb(fb):
    return fb


def _holder(fb) -> sqlite3.Connection:
    """Another process's writer, as SQLite sees it: a connection of its own holding the write lock."""
    holder = sqlite3.connect(fb.engine.url.database, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def _joins(fb, tenant_id: str) -> int:
    with fb.engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM occurrence_people WHERE tenant_id = :t"), {"t": tenant_id}
        ).scalar_one()


def test_G4_the_first_write_refused_at_once_when_another_process_holds_the_lock_writes_nothing(sqlite_fb):
    fb = sqlite_fb
    make_tenant(fb, tenant_id="sw1", catalog="attendee-credits", plan="pro")
    holder = _holder(fb)
    try:
        with pytest.raises(WouldWait), without_waiting():
            admission.join(fb, SYSTEM, "sw1", "o1", "a")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert _joins(fb, "sw1") == 0
    with without_waiting():  # the lock is free: the decision is made at once
        assert admission.join(fb, SYSTEM, "sw1", "o1", "a").counted
    assert _joins(fb, "sw1") == 1 and usage.verify(fb, SYSTEM, "sw1") == []


@contextmanager
def _turn_held_by_a_thread(fb, *, short: bool, seconds: float = 10.0) -> Iterator[None]:
    """Another thread of this process holds the writer turn (a decision's when `short`) for up to `seconds`."""
    inside, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with short_writes() if short else nullcontext(), fb.uow() as uow:
            inside.set()
            leave.wait(seconds)
            uow.commit()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert inside.wait(10)
        yield
    finally:
        leave.set()
        thread.join(10)


def test_the_first_write_is_refused_while_another_thread_of_this_process_has_its_turn(sqlite_fb):
    fb = sqlite_fb
    make_tenant(fb, tenant_id="sw2", catalog="attendee-credits", plan="pro")
    with _turn_held_by_a_thread(fb, short=False):
        with pytest.raises(WouldWait), without_waiting(turn=10):  # a longer writer: not waited for
            admission.join(fb, SYSTEM, "sw2", "o1", "a")
    assert _joins(fb, "sw2") == 0


def test_the_first_write_waits_briefly_behind_another_threads_decision_and_is_then_made_at_once(sqlite_fb):
    """Behind a short write (another decision, on a worker thread) the first write waits for the turn rather
    than going to a thread itself: else every request after one that went to a thread would go there too."""
    fb = sqlite_fb
    make_tenant(fb, tenant_id="sw6", catalog="attendee-credits", plan="pro")
    with _turn_held_by_a_thread(fb, short=True, seconds=0.05):
        with without_waiting(turn=10):
            assert admission.join(fb, SYSTEM, "sw6", "o1", "a").counted  # waited for the turn, then decided
    assert _joins(fb, "sw6") == 1
    with _turn_held_by_a_thread(fb, short=True):
        with pytest.raises(WouldWait), without_waiting(turn=0.05):  # but no longer than asked
            admission.join(fb, SYSTEM, "sw6", "o1", "b")
    assert _joins(fb, "sw6") == 1


def test_once_a_write_of_the_block_has_committed_later_ones_wait_for_the_lock(sqlite_fb):
    """Once a transaction of the block has committed, the block's later ones wait as always: a refusal then
    would leave the committed one's writes behind and make the caller repeat them."""
    fb = sqlite_fb
    make_tenant(fb, tenant_id="sw3", catalog="attendee-credits", plan="pro")
    with without_waiting():
        assert admission.join(fb, SYSTEM, "sw3", "o1", "a").counted
        holder = _holder(fb)
        releaser = threading.Timer(0.3, lambda: holder.execute("ROLLBACK"))
        releaser.start()
        try:
            assert admission.join(fb, SYSTEM, "sw3", "o1", "b").counted  # waited for the holder, then decided
        finally:
            releaser.join(10)
            holder.close()
    assert _joins(fb, "sw3") == 2 and usage.verify(fb, SYSTEM, "sw3") == []


def test_G4_a_join_over_http_while_another_process_writes_waits_on_a_thread_and_the_loop_keeps_answering(sqlite_fb):
    fb = sqlite_fb
    make_tenant(fb, tenant_id="sw4", catalog="attendee-credits", plan="pro")
    client = TestClient(create_app(fb))
    holder = _holder(fb)
    with ThreadPoolExecutor(2) as pool:
        try:
            pending = pool.submit(
                client.post, "/v1/tenants/sw4/occurrences/o1/join", json={"person_id": "a"}, headers=OPERATOR
            )
            time.sleep(0.2)
            assert not pending.done()  # waiting for the lock, on a worker thread
            health = pool.submit(client.get, "/healthz").result(timeout=10)  # the event loop is free
            assert health.status_code == 200
            assert not pending.done()
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        joined = pending.result(timeout=30)
    assert joined.status_code == 200 and joined.json()["counted"] is True
    assert _joins(fb, "sw4") == 1 and usage.verify(fb, SYSTEM, "sw4") == []


def test_decisions_over_http_from_many_threads_count_each_person_once_on_both_paths(sqlite_fb):
    """Joins arrive from 16 threads while another thread keeps taking the write turn: some decisions run on the
    loop, some wait on a worker thread; each person is counted once and the counters match the ledger (G3)."""
    fb = sqlite_fb
    make_tenant(fb, tenant_id="sw5", catalog="attendee-credits", plan="pro")
    client = TestClient(create_app(fb))
    stop = threading.Event()

    def busy_writer() -> None:
        while not stop.is_set():
            with fb.uow() as uow:
                time.sleep(0.002)
                uow.commit()

    writer = threading.Thread(target=busy_writer)
    writer.start()
    try:
        with ThreadPoolExecutor(16) as pool:
            answers = list(
                pool.map(
                    lambda i: client.post(
                        "/v1/tenants/sw5/occurrences/o1/join", json={"person_id": f"p{i % 40}"}, headers=OPERATOR
                    ),
                    range(120),
                )
            )
    finally:
        stop.set()
        writer.join(10)
    assert all(a.status_code == 200 for a in answers)
    assert sum(a.json()["counted"] for a in answers) == 40
    assert _joins(fb, "sw5") == 40 and usage.verify(fb, SYSTEM, "sw5") == []


def test_G4_after_a_rolled_back_first_write_a_later_one_is_still_refused_at_once_behind_a_long_writer(sqlite_fb):
    """A refusal (say 403 or 404 with an Idempotency-Key) rolls back and begins again to store its answer:
    nothing of the block is written yet, so that BEGIN too is refused rather than waited for on the loop."""
    fb = sqlite_fb
    make_tenant(fb, tenant_id="sw7", catalog="attendee-credits", plan="pro")
    with without_waiting(turn=10):
        with fb.uow() as uow:
            uow.rollback()
        with _turn_held_by_a_thread(fb, short=False):
            with pytest.raises(WouldWait), fb.uow():
                pass
    assert _joins(fb, "sw7") == 0


def test_after_commit_hooks_of_a_decision_made_on_the_loop_run_on_a_worker_thread(sqlite_fb):
    """A hook may call a payment provider or an SMTP server: never on the event loop, and still before the
    answer, also when the decision fails after its commit."""
    fb = sqlite_fb
    loop_thread, ran = threading.get_ident(), []

    def decision(fail: bool) -> str:
        with fb.uow() as uow:
            uow.after_commit(lambda: ran.append(threading.get_ident()))
            uow.commit()
        if fail:
            raise RuntimeError("after the commit")
        return "answer"

    assert asyncio.run(short_write(fb, lambda: decision(False))) == "answer"
    assert len(ran) == 1 and ran[0] != loop_thread
    with pytest.raises(RuntimeError):
        asyncio.run(short_write(fb, lambda: decision(True)))
    assert len(ran) == 2 and ran[1] != loop_thread


def test_a_decision_goes_to_a_thread_when_the_pool_is_nearly_used_up(db_url, clock):
    """Threads waiting for another process's lock each hold a pooled connection: the loop does not queue for
    one (it would wait for the pool's timeout with every request behind it)."""
    engine = make_engine(db_url, pool_settings=PoolSettings(size=2, max_overflow=0, timeout=5))
    fb = Farebox(engine=engine, clock=clock, settings=Settings(database_url=db_url, operator_key="k"))
    where = []
    try:
        held = engine.connect()  # one of two in use: one left
        assert free_connections(engine) == 1
        asyncio.run(short_write(fb, lambda: where.append(threading.get_ident())))
        held.close()
        asyncio.run(short_write(fb, lambda: where.append(threading.get_ident())))
    finally:
        engine.dispose()
    assert where[0] != threading.get_ident() and where[1] == threading.get_ident()
