"""The admission hot path reads the tenant's clock and its subscription in one
statement at the start of each decision (docs/performance.md).  Nothing is kept
between decisions, so a lifecycle change is seen by the very next decision:
a plan, status or trial that has ended never admits anyone (G9, G10, A3).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, select, update

from farebox.clocks import db as clocks_repo
from farebox.clocks import service as clocks
from farebox.events import signals
from farebox.events.signals import Signal
from farebox.kernel.access import SYSTEM
from farebox.kernel.periods import utc
from farebox.kernel.reasons import DomainError
from farebox.metering.db import metering as metering_repo
from farebox.metering.domain.admission import Mode, Role
from farebox.metering.services import admission, ingestion, usage
from farebox.storage.tables.metering import usage_counters
from farebox.subscriptions import db as subs_repo
from farebox.subscriptions.services import subscriptions

from factories import make_tenant

T0 = utc(2026, 1, 5, 9)
G10 = "Your subscription has ended. Please upgrade your plan to continue."


def _on_clock(fb, tenant_id: str, **kw) -> str:
    clock = clocks.create(fb, SYSTEM, name=f"hot-{tenant_id}", start=T0)
    make_tenant(fb, tenant_id=tenant_id)
    clocks.attach(fb, SYSTEM, clock["id"], tenant_id)
    if kw:
        subscriptions.subscribe(fb, SYSTEM, tenant_id, cause="test", **kw)
    return clock["id"]


def _message(fb, tenant_id: str, conversation: str):
    return admission.message(fb, SYSTEM, tenant_id, conversation, sender="customer")


def test_the_folded_read_answers_exactly_what_now_for_and_current_answer(fb, clock):
    """G2, G10: (exists, test clock time, current subscription) for each kind of tenant."""
    make_tenant(fb, tenant_id="none")  # no subscription at all
    make_tenant(fb, tenant_id="live", catalog="attendee-credits", plan="pro")
    _on_clock(fb, "clocked", catalog="attendee-credits", plan="free")
    _on_clock(fb, "ended", catalog="agent-sessions", plan="sme", trial=True)
    clocks.advance(
        fb, SYSTEM, clocks.get(fb, SYSTEM, _clock_of(fb, "ended"))["id"], by=timedelta(days=15)
    )  # A3: trial over, expired
    with fb.uow(readonly=True) as uow:
        for tenant_id in ("none", "live", "clocked", "ended", "nobody"):
            exists, test_now = clocks_repo.tenant_clock_time(uow.conn, tenant_id)
            expected = (exists, test_now, subs_repo.current(uow.conn, tenant_id))
            assert subs_repo.clock_and_current(uow.conn, tenant_id) == expected, tenant_id
        assert subs_repo.current(uow.conn, "ended").status.value == "expired"
        assert subs_repo.clock_and_current(uow.conn, "clocked")[1] == T0


def test_a_joins_first_read_answers_what_the_clock_subscription_occurrence_and_person_reads_answer(fb, clock):
    """G2, G10, L2: the join's one first statement (two on PostgreSQL) against the separate reads, for a
    tenant with and without a test clock, an unknown tenant, an occurrence that exists or not, a person
    counted in it or not."""
    make_tenant(fb, tenant_id="live", catalog="attendee-credits", plan="pro")
    _on_clock(fb, "clocked", catalog="attendee-credits", plan="free")
    for tenant_id in ("live", "clocked"):
        assert admission.join(fb, SYSTEM, tenant_id, "o1", "seen").counted
    with fb.uow() as uow:
        for tenant_id in ("live", "clocked", "nobody"):
            for occurrence_id, person_id in (("o1", "seen"), ("o1", "new"), ("o2", "seen")):
                expected = (
                    *subs_repo.clock_and_current(uow.conn, tenant_id),
                    *metering_repo.lock_occurrence_and_person(uow.conn, tenant_id, occurrence_id, person_id),
                )
                if not expected[0]:
                    expected = (False, None, None, None, None)
                found = metering_repo.clock_current_occurrence_and_person(
                    uow.conn, tenant_id, occurrence_id, person_id
                )
                assert found == expected, (tenant_id, occurrence_id, person_id)
        found = metering_repo.clock_current_occurrence_and_person(uow.conn, "clocked", "o1", "seen")
        assert found[1] == T0 and found[3]["counted"] == 1 and found[4]["counted_at"] is not None


def _clock_of(fb, tenant_id: str) -> str:
    with fb.uow(readonly=True) as uow:
        from farebox.tenants.db import tenants as tenants_repo

        return tenants_repo.get_tenant(uow.conn, tenant_id)["test_clock_id"]


def test_unknown_tenant_is_not_found_on_every_decision(fb):
    for decide in (
        lambda: admission.join(fb, SYSTEM, "ghost", "o1", "a"),
        lambda: admission.start_occurrence(fb, SYSTEM, "ghost", "o1"),
        lambda: _message(fb, "ghost", "c1"),
        lambda: admission.leave(fb, SYSTEM, "ghost", "o1", "a"),
    ):
        with pytest.raises(DomainError) as err:
            decide()
        assert err.value.code == "not_found"


def test_A3_G10_the_decision_after_the_trial_is_used_up_is_refused(fb):
    _on_clock(fb, "tr", catalog="agent-sessions", plan="sme", trial=True)
    answers = [_message(fb, "tr", f"c{i}") for i in range(50)]
    assert all(a.admitted and a.counted for a in answers)  # the 50th uses the trial up and ends it
    for refused in (
        _message(fb, "tr", "c50"),
        admission.join(fb, SYSTEM, "tr", "o1", "a"),
        admission.start_occurrence(fb, SYSTEM, "tr", "o2"),
    ):
        assert (refused.admitted, refused.reason, refused.message) == (False, "trial_exhausted", G10)


def test_A3_G10_inside_one_ingestion_batch_the_event_after_the_trial_ends_is_refused(fb):
    _on_clock(fb, "ti", catalog="agent-sessions", plan="sme", trial=True)
    events = [
        {
            "id": f"e{i}",
            "source": "test",
            "type": "conversation.message",
            "data": {"conversation_id": f"c{i}", "from": "customer"},
        }
        for i in range(52)
    ]
    report = ingestion.ingest(fb, SYSTEM, "ti", events)
    decisions = [r.decision for r in report.results]
    assert [d["counted"] for d in decisions[:50]] == [True] * 50
    assert [(d["admitted"], d["reason"], d["message"]) for d in decisions[50:]] == [(False, "trial_exhausted", G10)] * 2


def test_G9_grace_expiry_on_the_test_clock_refuses_the_next_join_and_paying_admits_again(fb):
    clock_id = _on_clock(fb, "gr", catalog="attendee-credits", plan="pro")
    with fb.uow(readonly=True) as uow:
        sub = subs_repo.current(uow.conn, "gr")
    assert admission.join(fb, SYSTEM, "gr", "o1", "a").admitted
    with fb.uow() as uow:
        signals.publish(
            uow,
            Signal(
                "invoice.payment_failed",
                "gr",
                T0,
                "test",
                "inv_1",
                {"subscription_id": sub.id, "renewal": True, "reason": "card_declined"},
            ),
        )
        uow.commit()
    clocks.advance(fb, SYSTEM, clock_id, by=timedelta(days=6))
    assert admission.join(fb, SYSTEM, "gr", "o2", "b").admitted  # in grace: service continues
    clocks.advance(fb, SYSTEM, clock_id, by=timedelta(days=1))
    overdue = admission.join(fb, SYSTEM, "gr", "o3", "c")
    assert (overdue.admitted, overdue.reason) == (False, "payment_overdue")
    with fb.uow() as uow:
        signals.publish(
            uow, Signal("invoice.paid", "gr", T0 + timedelta(days=7), "test", "inv_1", {"subscription_id": sub.id})
        )
        uow.commit()
    assert admission.join(fb, SYSTEM, "gr", "o3", "c").admitted


def test_L4_the_decision_after_an_upgrade_uses_the_new_plan(fb):
    _on_clock(fb, "up", catalog="attendee-credits", plan="free")
    assert all(admission.join(fb, SYSTEM, "up", "o1", f"p{i}").admitted for i in range(30))
    refused = admission.join(fb, SYSTEM, "up", "o1", "p30")
    assert (refused.admitted, refused.reason) == (False, "credits_exhausted")
    subscriptions.change_plan(fb, SYSTEM, "up", plan="pro")
    assert admission.join(fb, SYSTEM, "up", "o2", "p30").counted


# --- the cached carried figure (L4, L7): never a unit past a hard cap ---------------------


def _set_carried(fb, tenant_id: str, carried: int) -> None:
    with fb.uow() as uow:
        uow.conn.execute(
            update(usage_counters).where(usage_counters.c.tenant_id == tenant_id).values(carried_in=carried)
        )
        uow.commit()


def _used(fb, tenant_id: str) -> int:
    with fb.uow(readonly=True) as uow:
        return uow.conn.execute(
            select(usage_counters.c.used).where(usage_counters.c.tenant_id == tenant_id)
        ).scalar_one()


def test_L7_a_cached_carried_figure_larger_than_the_counters_never_passes_the_hard_cap(fb):
    """The cache says 5 carried in; the row says 0 (it cannot change in farebox, so the test
    changes it): the 31st credit of the free plan is still refused."""
    make_tenant(fb, tenant_id="cc", catalog="attendee-credits", plan="free")
    assert admission.join(fb, SYSTEM, "cc", "o1", "p0").counted  # creates the counter
    _set_carried(fb, "cc", 5)
    metering_repo._CARRIED_IN.clear()  # as in a process started now
    assert admission.join(fb, SYSTEM, "cc", "o1", "p1").counted  # reads and caches 5
    _set_carried(fb, "cc", 0)
    assert all(admission.join(fb, SYSTEM, "cc", "o1", f"p{i}").counted for i in range(2, 30))
    refused = admission.join(fb, SYSTEM, "cc", "o1", "p30")
    assert (refused.admitted, refused.reason) == (False, "credits_exhausted")
    assert _used(fb, "cc") == 30 and usage.verify(fb, SYSTEM, "cc") == []


def _used_or_none(fb, tenant_id: str) -> int | None:
    with fb.uow(readonly=True) as uow:
        return uow.conn.execute(select(usage_counters.c.used).where(usage_counters.c.tenant_id == tenant_id)).scalar()


def test_L3_a_cached_counter_whose_creation_was_rolled_back_is_created_again_and_counts(fb):
    make_tenant(fb, tenant_id="rb", catalog="attendee-credits", plan="enterprise")  # overage: an uncapped consume
    with fb.uow() as uow:  # a batch that fails: the counter it created is rolled back, its figure stays cached
        now = clocks.now_for(uow, fb.clock, "rb")
        assert admission.join_in(uow, "rb", "o1", "p0", mode=Mode.LIVE, role=Role.ATTENDEE, now=now).counted
        uow.rollback()
    assert _used_or_none(fb, "rb") is None
    assert admission.join(fb, SYSTEM, "rb", "o1", "p0").counted
    assert _used(fb, "rb") == 1 and usage.verify(fb, SYSTEM, "rb") == []


# --- no pool_pre_ping on PostgreSQL (one round trip less per decision) ---------------------


def test_G4_an_idle_pooled_connection_the_server_dropped_fails_one_join_with_503_and_the_retry_counts_once(fb):
    """Without a ping before each unit of work, the first request on a connection the
    server ended answers 503 storage_unavailable (nothing written); the pool is
    refreshed, and the retry with the same Idempotency-Key is counted once."""
    if fb.engine.dialect.name != "postgresql":
        pytest.skip("dropping a server connection needs PostgreSQL")
    from fastapi.testclient import TestClient
    from sqlalchemy import create_engine, text

    from farebox.entrypoints.api.app import create_app
    from farebox.storage.engine import normalise_url

    make_tenant(fb, tenant_id="dc", catalog="attendee-credits", plan="pro")
    headers = {"Authorization": "Bearer test-operator-key", "Idempotency-Key": "join-dc-1"}
    with TestClient(create_app(fb), raise_server_exceptions=False) as client:
        assert client.post("/v1/tenants/dc/occurrences/o1/join", json={"person_id": "a"}, headers=headers).json()[
            "counted"
        ]
        admin = create_engine(normalise_url(fb.settings.database_url), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:  # every idle connection of the test's database, as a server restart would
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND "
                        "pid <> pg_backend_pid()"
                    )
                )
        finally:
            admin.dispose()
        retry_headers = {**headers, "Idempotency-Key": "join-dc-2"}
        first = client.post("/v1/tenants/dc/occurrences/o1/join", json={"person_id": "b"}, headers=retry_headers)
        assert first.status_code == 503 and first.json()["error"]["code"] == "storage_unavailable", first.text
        second = client.post("/v1/tenants/dc/occurrences/o1/join", json={"person_id": "b"}, headers=retry_headers)
        assert second.status_code == 200 and second.json()["counted"] is True, second.text
        third = client.post("/v1/tenants/dc/occurrences/o1/join", json={"person_id": "b"}, headers=retry_headers)
        assert third.json() == second.json() and third.headers.get("Idempotent-Replayed") == "true"
    assert _used(fb, "dc") == 2 and usage.verify(fb, SYSTEM, "dc") == []


def test_a_write_lock_not_obtained_on_sqlite_is_sqlalchemys_operational_error_which_the_api_answers_with_503(fb):
    """BEGIN IMMEDIATE goes straight to the driver; its failure is still SQLAlchemy's OperationalError."""
    if fb.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock")
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from farebox.storage.engine import make_engine

    make_tenant(fb, tenant_id="lk", catalog="attendee-credits", plan="pro")
    holder = sqlite3.connect(fb.engine.url.database, isolation_level=None)
    impatient = make_engine(fb.engine.url.render_as_string(hide_password=False))
    try:

        @event.listens_for(impatient, "connect")
        def _no_wait(dbapi_connection, _record):
            dbapi_connection.execute("PRAGMA busy_timeout=0")

        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError, match="locked"):
            with impatient.connect() as conn:
                conn.begin()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        impatient.dispose()


def test_L2_two_first_joins_of_one_person_into_a_new_occurrence_count_once(fb):
    """PostgreSQL: the second join waits while the first creates the occurrence and counts the
    person; once it has the occurrence it reads the person again and answers already_counted
    (it must not insert the person a second time)."""
    if fb.engine.dialect.name != "postgresql":
        pytest.skip("two writers at once need PostgreSQL")
    import threading
    import time

    from sqlalchemy import text

    make_tenant(fb, tenant_id="rc", catalog="attendee-credits", plan="pro")
    second: dict = {}
    with fb.uow() as uow:
        now = clocks.now_for(uow, fb.clock, "rc")
        assert admission.join_in(uow, "rc", "o1", "p0", mode=Mode.LIVE, role=Role.ATTENDEE, now=now).counted
        waiter = threading.Thread(target=lambda: second.update(decision=admission.join(fb, SYSTEM, "rc", "o1", "p0")))
        waiter.start()
        deadline = time.monotonic() + 30
        with fb.engine.connect() as watch:  # until the second join waits for this transaction's row
            while not watch.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = "
                    "'Lock'"
                )
            ).scalar_one():
                assert time.monotonic() < deadline, "the second join never waited"
                time.sleep(0.01)
        uow.commit()
    waiter.join(60)
    assert (second["decision"].admitted, second["decision"].counted, second["decision"].reason) == (
        True,
        False,
        "already_counted",
    )
    assert _used(fb, "rc") == 1 and usage.verify(fb, SYSTEM, "rc") == []


def test_S6_G12_two_first_entries_into_a_new_occurrence_keep_the_first_start_and_one_warning(fb):
    """PostgreSQL: the second first-entry waits while the first creates and starts the
    occurrence; it must keep that start and deadline (S6: the clock runs from the first
    entry) and not schedule a second "10 minutes left" warning (G12: once)."""
    if fb.engine.dialect.name != "postgresql":
        pytest.skip("two writers at once need PostgreSQL")
    import threading
    import time

    from sqlalchemy import text

    from farebox.bootstrap import Farebox
    from farebox.kernel.clock import FrozenClock

    make_tenant(fb, tenant_id="fs", catalog="session-caps", plan="pro")
    second: dict = {}
    later = FrozenClock(fb.clock.now() + timedelta(minutes=45))  # makes a second start visible
    with fb.uow() as uow:
        now = clocks.now_for(uow, fb.clock, "fs")
        first = admission.join_in(uow, "fs", "o1", "p1", mode=Mode.LIVE, role=Role.ATTENDEE, now=now)
        box = Farebox(engine=fb.engine, clock=later, settings=fb.settings)
        waiter = threading.Thread(target=lambda: second.update(decision=admission.join(box, SYSTEM, "fs", "o1", "p2")))
        waiter.start()
        deadline = time.monotonic() + 30
        with fb.engine.connect() as watch:  # until the second entry waits for this transaction's row
            while not watch.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = "
                    "'Lock'"
                )
            ).scalar_one():
                assert time.monotonic() < deadline, "the second entry never waited"
                time.sleep(0.01)
        uow.commit()
    waiter.join(60)
    assert second["decision"].counted and second["decision"].deadline == first.deadline
    with fb.engine.connect() as conn:
        kinds = sorted(conn.execute(text("SELECT kind FROM due_items WHERE tenant_id = 'fs' AND ref = 'o1'")).scalars())
    assert len(kinds) == 2 and len(set(kinds)) == 2, kinds  # one warning, one end


def test_G3_A8_a_counter_committed_by_another_transaction_right_after_a_missed_update_still_counts_once(fb):
    """PostgreSQL, an overage pool: decision A creates the period's counter (not yet committed;
    its figure is cached in this process); decision B's update finds no visible row, and A
    commits right then.  B must count its session with its ledger unit (G3), never answer
    counted without one (seen once in the scale-out test before the fix)."""
    if fb.engine.dialect.name != "postgresql":
        pytest.skip("two writers at once need PostgreSQL")
    import threading

    make_tenant(fb, tenant_id="mc", catalog="agent-sessions", plan="sme")  # sessions: overage, an uncapped consume
    metering_repo._CARRIED_IN.clear()
    missed, committed = threading.Event(), threading.Event()
    result: dict = {}

    def after_execute(conn, cursor, statement, parameters, context, executemany):
        if (
            threading.current_thread().name == "B"
            and statement.lstrip().upper().startswith("UPDATE USAGE_COUNTERS")
            and cursor.rowcount == 0
            and not missed.is_set()
        ):
            missed.set()
            committed.wait(30)  # A commits between B's missed update and whatever B does next

    event.listen(fb.engine, "after_cursor_execute", after_execute)
    try:
        with fb.uow() as uow:
            now = clocks.now_for(uow, fb.clock, "mc")
            assert admission.message_in(uow, "mc", "a", admission.Sender.CUSTOMER, now=now).counted
            b = threading.Thread(
                name="B",
                target=lambda: result.update(decision=admission.message(fb, SYSTEM, "mc", "b", sender="customer")),
            )
            b.start()
            assert missed.wait(30), "B's update never missed the uncommitted counter"
            uow.commit()
        committed.set()
        b.join(60)
    finally:
        event.remove(fb.engine, "after_cursor_execute", after_execute)
    assert result["decision"].counted
    assert _used(fb, "mc") == 2 and usage.verify(fb, SYSTEM, "mc") == []
