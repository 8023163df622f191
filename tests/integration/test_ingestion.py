"""Batch ingestion (docs/admission.md, "Ingestion"): every event string is checked (F7), a late event
counts in the period that contains its time or is refused with its own reason (D3, A1, G3), and a batch
is applied in short transactions (F2).  Both engines; `usage verify` after each."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from farebox.clocks import service as clocks
from farebox.kernel.access import SYSTEM
from farebox.kernel.periods import utc
from farebox.metering.db import metering as metering_repo
from farebox.metering.services import ingestion, usage
from farebox.storage.tables.metering import usage_events, usage_records
from farebox.subscriptions.services import subscriptions

from factories import make_tenant

T0 = utc(2026, 1, 5, 9)


def _message(event_id: str, conversation: str, *, time: str | None = None, sender: str = "customer") -> dict:
    event = {
        "id": event_id,
        "source": "chat",
        "type": "conversation.message",
        "data": {"conversation_id": conversation, "from": sender},
    }
    if time is not None:
        event["time"] = time
    return event


def _join(event_id: str, occurrence: str, person: str, *, time: str | None = None) -> dict:
    event = {
        "id": event_id,
        "source": "replays",
        "type": "attendee.joined",
        "data": {"occurrence_id": occurrence, "person_id": person},
    }
    if time is not None:
        event["time"] = time
    return event


def _on_clock(fb, tenant_id: str, *, catalog: str, plan: str) -> str:
    clock = clocks.create(fb, SYSTEM, name=f"ing-{tenant_id}", start=T0)
    make_tenant(fb, tenant_id=tenant_id)
    clocks.attach(fb, SYSTEM, clock["id"], tenant_id)
    subscriptions.subscribe(fb, SYSTEM, tenant_id, catalog=catalog, plan=plan, cause="test")
    return clock["id"]


def _used(fb, tenant_id: str, period_start: datetime) -> int:
    with fb.uow(readonly=True) as uow:
        sub = subscriptions_current(uow, tenant_id)
        return sum(c["used"] for c in metering_repo.counters_for(uow.conn, tenant_id, sub, period_start))


def subscriptions_current(uow, tenant_id: str) -> str:
    from farebox.subscriptions import db as subs_repo

    sub = subs_repo.current(uow.conn, tenant_id)
    assert sub is not None
    return sub.id


def _stored(fb, tenant_id: str) -> int:
    with fb.engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(usage_events).where(usage_events.c.tenant_id == tenant_id)
        ).scalar_one()


# --- F7: every string of an event is checked ---------------------------------------------------


@pytest.mark.parametrize("where", ["id", "source", "person_id", "occurrence_id", "subject", "data.note", "key"])
@pytest.mark.parametrize("bad", ["\ud800", "x\udfffy", "a\x00b"])
def test_F7_a_lone_surrogate_or_nul_anywhere_in_an_event_refuses_that_event_only(fb, where, bad):
    make_tenant(fb, tenant_id="f7", catalog="attendee-credits", plan="pro")
    poisoned = _join("bad-1", "o1", "p-bad")
    if where in ("id", "source"):
        poisoned[where] = bad
    elif where == "subject":
        poisoned["subject"] = bad
    elif where == "data.note":
        poisoned["data"]["note"] = bad
    elif where == "key":
        poisoned["data"][bad] = "x"
    else:
        poisoned["data"][where] = bad
    report = ingestion.ingest(fb, SYSTEM, "f7", [_join("ok-1", "o1", "good"), poisoned, _message("ok-2", "c1")])
    assert [r.status for r in report.results] == ["applied", "refused", "applied"]
    refused = report.results[1]
    assert refused.code == "event_invalid" and refused.message.startswith("`"), refused
    assert refused.id is None or refused.id == "bad-1"
    assert report.counted == 1 and _stored(fb, "f7") == 2
    assert usage.verify(fb, SYSTEM, "f7") == []


def test_F7_over_http_the_batch_answers_200_with_the_bad_event_refused(fb):
    """A lone surrogate or a NUL in one event refuses that event only, over HTTP too (the request body's own NUL
    check leaves a batch's events to ingestion's per-event check)."""
    from fastapi.testclient import TestClient

    from farebox.entrypoints.api.app import create_app

    make_tenant(fb, tenant_id="f7h", catalog="attendee-credits", plan="pro")
    client = TestClient(create_app(fb), raise_server_exceptions=False)
    body = (
        '{"events":[{"id":"ok-1","source":"fz","type":"attendee.joined",'
        '"data":{"occurrence_id":"s","person_id":"good"}},'
        '{"id":"\\ud800","source":"fz","type":"attendee.joined","data":{"occurrence_id":"s","person_id":"\\ud800"}},'
        '{"id":"nul-1","source":"fz","type":"attendee.joined","data":{"occurrence_id":"s","person_id":"a\\u0000b"}}]}'
    )
    r = client.post(
        "/v1/tenants/f7h/usage/events",
        content=body,
        headers={"Authorization": "Bearer test-operator-key", "content-type": "application/json"},
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert (
        [x["status"] for x in results] == ["applied", "refused", "refused"]
        and results[1]["code"] == results[2]["code"] == "event_invalid"
        and results[1]["id"] is None
        and results[2]["id"] == "nul-1"
        and "data.person_id" in results[2]["message"]
    )


# --- D3: late events count in the period of their time -------------------------------------------


def test_D3_A1_a_late_message_counts_in_the_period_of_its_time_not_the_current_one(fb):
    """A free yearly plan is not invoiced at renewal: last year's period is still open to late usage."""
    clock_id = _on_clock(fb, "late", catalog="agent-sessions", plan="playground")
    clocks.advance(fb, SYSTEM, clock_id, by=timedelta(days=400))  # renewed on 2027-01-05
    report = ingestion.ingest(
        fb,
        SYSTEM,
        "late",
        [
            _message("m1", "c-old", time="2026-03-01T10:00:00Z"),
            _message("m2", "c-new", time="2027-02-01T10:00:00Z"),
        ],
    )
    assert report.counted == 2, report.results
    assert _used(fb, "late", T0) == 1
    assert _used(fb, "late", utc(2027, 1, 5, 9)) == 1
    with fb.engine.connect() as conn:
        ats = sorted(
            conn.execute(
                select(usage_records.c.period_start_at, usage_records.c.at).where(usage_records.c.tenant_id == "late")
            ).all()
        )
    assert ats == [
        (T0, utc(2026, 3, 1, 10)),
        (utc(2027, 1, 5, 9), utc(2027, 2, 1, 10)),
    ]  # G3: the ledger explains each counter
    summary = usage.usage_summary(fb, SYSTEM, "late")
    assert summary.meters[0].used == 1
    assert usage.verify(fb, SYSTEM, "late") == []


def test_D3_events_before_the_first_subscription_in_the_future_or_in_an_invoiced_period_are_refused(fb):
    """The probe of the review (probes/late_event.py), with each refusal's own reason and message."""
    clock_id = _on_clock(fb, "x", catalog="agent-sessions", plan="sme")
    clocks.advance(
        fb, SYSTEM, clock_id, by=timedelta(days=40)
    )  # now 2026-02-14; the renewal invoice was issued on 02-05
    now = T0 + timedelta(days=40)
    events = [
        _message("m1", "c1", time="2026-01-10T10:00:00Z"),  # the first period: its invoice is issued
        _message("m2", "c2", time="2025-06-01T10:00:00Z"),  # before the subscription existed
        _message("m3", "c3", time=(now + timedelta(hours=1)).isoformat()),  # in the future
        _message("m4", "c4", time=(now + timedelta(minutes=2)).isoformat()),  # within the skew: counted now
        _message("m5", "c5", time="2026-02-10T10:00:00Z"),  # earlier in the current period: counted then
    ]
    report = ingestion.ingest(fb, SYSTEM, "x", events)
    codes = [(r.status, r.code) for r in report.results]
    assert codes == [
        ("refused", "event_period_invoiced"),
        ("refused", "event_before_subscription"),
        ("refused", "event_in_future"),
        ("applied", None),
        ("applied", None),
    ]
    assert "2026-01-10T10:00:00Z" in report.results[0].message and "2026-02-05T09:00:00Z" in report.results[0].message
    assert "2026-01-05T09:00:00Z" in report.results[1].message
    assert "5 minutes" in report.results[2].message
    assert report.counted == 2 and usage.usage_summary(fb, SYSTEM, "x").meters[0].used == 2
    with fb.engine.connect() as conn:
        ats = sorted(conn.execute(select(usage_records.c.at).where(usage_records.c.tenant_id == "x")).scalars())
    assert ats == [utc(2026, 2, 10, 10), now]
    # a refused event is not claimed: sent again once its time has come, it counts
    clocks.advance(fb, SYSTEM, clock_id, by=timedelta(hours=2))
    again = ingestion.ingest(fb, SYSTEM, "x", [events[2], events[4]])
    assert [(r.status, r.decision["counted"] if r.decision else None) for r in again.results] == [
        ("applied", True),
        ("duplicate", True),
    ]
    assert usage.verify(fb, SYSTEM, "x") == []


def test_D3_a_tenant_without_any_subscription_counts_nothing(fb):
    make_tenant(fb, tenant_id="nosub")
    report = ingestion.ingest(fb, SYSTEM, "nosub", [_join("e1", "o1", "a"), _message("e2", "c1")])
    assert {r.code for r in report.results} == {"event_before_subscription"} and report.counted == 0


def test_D3_a_late_join_of_an_ended_trial_counts_under_the_trial_that_was_live_then(fb):
    """A3/G10 at the event's time: a replay view from the trial, reported after the trial ended, is counted in it."""
    clock_id = clocks.create(fb, SYSTEM, name="trial", start=T0)["id"]
    make_tenant(fb, tenant_id="tr")
    clocks.attach(fb, SYSTEM, clock_id, "tr")
    subscriptions.subscribe(fb, SYSTEM, "tr", catalog="agent-sessions", plan="sme", trial=True, cause="test")
    clocks.advance(fb, SYSTEM, clock_id, by=timedelta(days=20))  # the trial (14 days) is over
    report = ingestion.ingest(
        fb, SYSTEM, "tr", [_message("m1", "c1", time="2026-01-06T10:00:00Z"), _message("m2", "c2")]
    )
    assert [(r.status, r.decision["reason"] if r.decision else r.code) for r in report.results] == [
        ("applied", "admitted"),
        ("applied", "subscription_expired"),
    ]
    assert usage.verify(fb, SYSTEM, "tr") == []


# --- F2 / G3: each pool taken once per chunk, last; re-decided when another process moved it -------------


def test_F2_L7_a_pool_used_elsewhere_after_the_chunk_read_it_is_locked_read_again_and_the_chunk_decided_again(
    fb, monkeypatch
):
    from farebox.metering.db import ingestion as batch_repo
    from farebox.metering.services import admission

    from metering_support import shrink

    make_tenant(fb, tenant_id="race", catalog="attendee-credits", plan="pro")
    shrink(fb, "race", "credits", 10)
    for n in range(8):
        assert admission.join(fb, SYSTEM, "race", "live", f"l{n}").counted
    reads: list[bool] = []
    real = batch_repo.pool_counter

    def stale_first_read(conn, *, lock, **counter):
        reads.append(lock)
        used, carried = real(conn, lock=lock, **counter)
        return (used - 8, carried) if not lock else (used, carried)  # as read before 8 live joins committed elsewhere

    monkeypatch.setattr(batch_repo, "pool_counter", stale_first_read)
    report = ingestion.ingest(fb, SYSTEM, "race", [_join(f"e{n}", "replayed", f"r{n}") for n in range(5)])
    assert reads == [False, True]  # the guard refused the stale decision; the pool was then read under lock
    assert [r.decision["reason"] for r in report.results] == ["admitted"] * 2 + ["credits_exhausted"] * 3
    assert usage.usage_summary(fb, SYSTEM, "race").meter("credits").used == 10
    assert usage.verify(fb, SYSTEM, "race") == []


def test_G4_a_batch_cut_off_half_way_and_sent_again_counts_every_event_once(fb, monkeypatch):
    """The chunks committed before the failure answer `duplicate` when the batch is sent again;
    nothing is counted twice."""
    from farebox.metering.services import ingestion_batch

    make_tenant(fb, tenant_id="cut", catalog="attendee-credits", plan="enterprise")
    events = [_join(f"e{n}", f"o{n % 7}", f"p{n}") for n in range(ingestion.CHUNK * 3)]
    calls = iter(range(100))
    real = ingestion_batch.apply

    def dies_in_the_third_chunk(*args, **kw):
        if next(calls) == 2:
            raise ConnectionError("the process was killed")
        return real(*args, **kw)

    monkeypatch.setattr(ingestion_batch, "apply", dies_in_the_third_chunk)
    with pytest.raises(ConnectionError):
        ingestion.ingest(fb, SYSTEM, "cut", events)
    assert _stored(fb, "cut") == 2 * ingestion.CHUNK and usage.verify(fb, SYSTEM, "cut") == []
    monkeypatch.setattr(ingestion_batch, "apply", real)
    again = ingestion.ingest(fb, SYSTEM, "cut", events)
    assert (again.duplicates, again.applied, again.counted) == (2 * ingestion.CHUNK, ingestion.CHUNK, ingestion.CHUNK)
    assert usage.usage_summary(fb, SYSTEM, "cut").meter("credits").used == 3 * ingestion.CHUNK
    assert usage.verify(fb, SYSTEM, "cut") == []


# --- G4: repeats answered from what was stored --------------------------------------------------------


def test_G4_repeats_from_many_sources_and_with_escaped_characters_answer_their_first_answer(fb):
    """Events are looked up one statement per source, or all at once beyond a few sources; an event whose
    text holds characters its JSON escapes (an emoji: a surrogate pair) is valid, looked up after its check,
    and answers `duplicate` (or `event_conflict`) when sent again like any other (G4, F7)."""
    make_tenant(fb, tenant_id="many", catalog="attendee-credits", plan="enterprise")
    events = [{**_join(f"e{n}", f"o{n % 3}", f"p{n}"), "source": f"src-{n % 12}"} for n in range(36)]
    events += [_join("emoji-1", "o1", "p-\U0001f600"), _join("accent-1", "o2", "p-é")]
    first = ingestion.ingest(fb, SYSTEM, "many", events)
    assert (first.applied, first.counted, first.refused) == (38, 38, 0)
    changed = {**_join("emoji-1", "o1", "someone else"), "source": "replays"}
    again = ingestion.ingest(fb, SYSTEM, "many", events + [changed])
    assert again.duplicates == 38 and again.applied == 0
    assert [r.decision for r in again.results[:38]] == [r.decision for r in first.results]
    assert again.results[38].code == "event_conflict"
    assert usage.usage_summary(fb, SYSTEM, "many").meter("credits").used == 38
    assert usage.verify(fb, SYSTEM, "many") == []


def test_G4_events_stored_with_the_first_payload_hash_answer_duplicate_or_conflict_when_sent_again(fb):
    """Payloads are hashed from orjson's compact text with sorted keys; events stored before that, with the hash of
    `json.dumps(sort_keys=True)`, still answer `duplicate` when sent again unchanged and `event_conflict` when
    changed.  A payload orjson cannot write (an integer beyond 64 bits) is hashed the first way; a text that looks
    like an escape (a backslash, then `u0000`) takes the checked path and repeats like any other (G4, F7)."""
    make_tenant(fb, tenant_id="rehash", catalog="attendee-credits", plan="enterprise")
    plain = _join("old-1", "o1", "p1")
    wide = {**_join("old-2", "o1", "p2"), "extension": {"n": 2**70}}
    slash = _join("old-3", "o1", "p-\\u0000")
    events = [plain, wide, slash]
    assert ingestion.ingest(fb, SYSTEM, "rehash", events).applied == 3
    assert ingestion.digest_of(plain) != ingestion._legacy_digest(plain)
    assert ingestion.digest_of(wide) == ingestion._legacy_digest(wide)
    assert ingestion._digest(slash)[1] is False  # the checked path
    e = usage_events.c
    with fb.engine.begin() as conn:  # as an earlier farebox stored them
        for event in events:
            legacy = ingestion._legacy_digest(event)
            where = (e.tenant_id == "rehash", e.id == event["id"])
            conn.execute(usage_events.update().where(*where).values(payload_hash=legacy))
    reordered = {"data": dict(reversed(list(plain["data"].items()))), **{k: v for k, v in plain.items() if k != "data"}}
    changed = [{**event, "data": {**event["data"], "occurrence_id": "o2"}} for event in events]  # slash: still checked
    again = ingestion.ingest(fb, SYSTEM, "rehash", [*events, reordered, *changed])
    assert [r.status for r in again.results] == ["duplicate"] * 4 + ["refused"] * 3
    assert {r.code for r in again.results[4:]} == {"event_conflict"}
    assert usage.usage_summary(fb, SYSTEM, "rehash").meter("credits").used == 3
    assert usage.verify(fb, SYSTEM, "rehash") == []


def test_G4_a_resent_event_whose_nan_became_null_is_a_conflict_not_a_duplicate(fb):
    """NaN, Infinity and null are three payloads (orjson writes the first two as null: such a payload is hashed
    from the legacy text), in a batch as in `digest_of`."""
    make_tenant(fb, tenant_id="nan", catalog="attendee-credits", plan="enterprise")
    nan = {**_join("n1", "o1", "p1"), "extension": {"x": float("nan")}, "time": None}
    first = ingestion.ingest(fb, SYSTEM, "nan", [nan])
    assert first.applied == 1
    again = ingestion.ingest(fb, SYSTEM, "nan", [nan, {**nan, "extension": {"x": None}},
                                                 {**nan, "extension": {"x": float("inf")}}])
    assert [r.status for r in again.results] == ["duplicate", "refused", "refused"]
    assert {r.code for r in again.results[1:]} == {"event_conflict"}


def test_G15_an_in_process_event_that_is_not_json_values_is_refused_on_its_own(fb):
    """An in-process caller may pass keys that are not text or an object inside itself: that event is
    `event_invalid`, and the rest of the batch is applied (before, the whole batch raised)."""
    make_tenant(fb, tenant_id="odd", catalog="attendee-credits", plan="enterprise")
    mixed = {**_join("k1", "o1", "p1"), "extension": {1: "a", "b": 2}}
    looped = {**_join("k2", "o1", "p2"), "extension": {}}
    looped["extension"]["self"] = looped
    report = ingestion.ingest(fb, SYSTEM, "odd", [mixed, looped, _join("k3", "o1", "p3")])
    assert [(r.status, r.code) for r in report.results] == [
        ("refused", "event_invalid"), ("refused", "event_invalid"), ("applied", None)
    ]
    assert "JSON values" in report.results[0].message and report.counted == 1


def test_G4_the_same_event_twice_in_one_batch_and_across_chunks_counts_once(fb, monkeypatch):
    make_tenant(fb, tenant_id="twice", catalog="attendee-credits", plan="enterprise")
    monkeypatch.setattr(ingestion, "CHUNK", 2)
    events = [_join("a", "o1", "p1"), _join("a", "o1", "p1"), _join("b", "o1", "p2"), _join("a", "o1", "p1")]
    events.append({**_join("a", "o1", "p9")})  # the same id, another payload: a conflict, in a later chunk
    report = ingestion.ingest(fb, SYSTEM, "twice", events)
    assert [r.status for r in report.results] == ["applied", "duplicate", "applied", "duplicate", "refused"]
    assert report.results[4].code == "event_conflict" and report.counted == 2
    assert report.results[1].decision == report.results[0].decision == report.results[3].decision
    assert usage.verify(fb, SYSTEM, "twice") == []


def test_A1_a_conversation_a_live_message_creates_while_the_chunk_decides_is_read_again_and_decided_again(
    fb, monkeypatch
):
    """PostgreSQL (SQLite's write lock keeps a live message out of a chunk): the chunk creates its new
    conversations once decided; one created meanwhile by a live message is read again and the chunk decided
    again, so the window the live message opened is not opened (nor billed) a second time (A1, G3)."""
    if fb.engine.dialect.name != "postgresql":
        pytest.skip("on SQLite the chunk holds the write lock: no live message can come in between")
    from farebox.metering.db import ingestion as batch_repo
    from farebox.metering.services import admission

    make_tenant(fb, tenant_id="race-c", catalog="agent-sessions", plan="playground")
    real = batch_repo.lock_conversations
    calls: list[int] = []

    def a_live_message_comes_in_after_the_read(conn, tenant_id, first_at):
        found = real(conn, tenant_id, first_at)
        if not calls:
            assert admission.message(fb, SYSTEM, "race-c", "c1", sender="customer").counted  # its own transaction
        calls.append(len(found))
        return found

    monkeypatch.setattr(batch_repo, "lock_conversations", a_live_message_comes_in_after_the_read)
    report = ingestion.ingest(fb, SYSTEM, "race-c", [_message("m1", "c1"), _message("m2", "c2")])
    assert len(calls) == 2  # decided again after the conflict
    assert [r.decision["reason"] for r in report.results] == ["window_open", "admitted"]
    assert report.counted == 1
    assert usage.usage_summary(fb, SYSTEM, "race-c").meter("sessions").used == 2
    assert usage.verify(fb, SYSTEM, "race-c") == []


# --- the garbage collector paused during a batch ---------------------------------------------------


def test_G4_a_batch_pauses_the_cyclic_collector_leaves_no_cyclic_garbage_and_turns_it_back_on(fb, monkeypatch):
    """The collector is off while a batch is ingested (its objects would trigger full collections of the heap);
    that is only sound if a batch makes no reference cycles: the garbage found after two batches (new, then
    duplicates) stays far below their size.  The collector is on again afterwards, also after a failure."""
    import gc

    make_tenant(fb, tenant_id="gc", catalog="attendee-credits", plan="enterprise")
    ingestion.ingest(fb, SYSTEM, "gc", [_join("warm", "o0", "p0")])  # statements compiled, caches filled
    events = [_join(f"e{n}", f"o{n % 13}", f"p{n % 1700}") for n in range(3000)]
    assert gc.isenabled()
    during: list[bool] = []
    real_chunk = ingestion._chunk
    monkeypatch.setattr(ingestion, "_chunk", lambda *a, **k: during.append(gc.isenabled()) or real_chunk(*a, **k))
    gc.collect()
    gc.disable()  # from here on, cyclic garbage stays until collected below
    try:
        first = ingestion.ingest(fb, SYSTEM, "gc", events)
        again = ingestion.ingest(fb, SYSTEM, "gc", events)
        assert (first.applied, again.duplicates) == (3000, 3000)
        del first, again
        cyclic = gc.collect()
    finally:
        gc.enable()
    assert cyclic < 100, cyclic  # 6,000 events: everything they made was freed by reference counting
    during.clear()
    ingestion.ingest(fb, SYSTEM, "gc", events[:5])
    assert during == [False] and gc.isenabled()

    def dies(*a, **k):
        raise ConnectionError("the connection was lost")

    monkeypatch.setattr(ingestion, "_chunk", dies)
    with pytest.raises(ConnectionError):
        ingestion.ingest(fb, SYSTEM, "gc", [_join("x1", "o1", "p1")])
    assert gc.isenabled()
    assert usage.verify(fb, SYSTEM, "gc") == []


def test_G4_a_batch_that_ends_while_another_runs_collects_once_and_the_collector_stays_off_until_the_last(
    fb, monkeypatch
):
    """Batches that keep overlapping must not leave the process's other garbage uncollected: the one that ends
    first collects once; the collector is on again only when the last one ends."""
    import gc

    make_tenant(fb, tenant_id="gc2", catalog="attendee-credits", plan="enterprise")
    collected: list[bool] = []
    real_collect = gc.collect
    monkeypatch.setattr(gc, "collect", lambda *a: collected.append(gc.isenabled()) or real_collect(*a))
    real_chunks = ingestion._chunks
    inner: list[ingestion.IngestReport] = []
    started: list[bool] = []

    def with_another_batch(*a, **k):
        if not started:  # another batch runs, and ends, while this one runs (between its chunks' transactions)
            started.append(True)
            inner.append(ingestion.ingest(fb, SYSTEM, "gc2", [_join("inner", "o1", "p1")]))
            assert not gc.isenabled()
        return real_chunks(*a, **k)

    monkeypatch.setattr(ingestion, "_chunks", with_another_batch)
    assert gc.isenabled()
    outer = ingestion.ingest(fb, SYSTEM, "gc2", [_join("outer", "o1", "p2")])
    assert (inner[0].applied, outer.applied) == (1, 1)
    assert collected == [False]  # once, by the batch that ended first, the collector still off for the other
    assert gc.isenabled()
    assert usage.verify(fb, SYSTEM, "gc2") == []
