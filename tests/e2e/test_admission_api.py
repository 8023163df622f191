"""Admission and usage through HTTP: decisions answer 200, idempotency keys count once (G4, G15).

The platform's side is `farebox.client` (issue 16 item 6); raw requests where the status code itself is tested."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from farebox.client import Client, FareboxError, reasons
from farebox.entrypoints.api.app import create_app
from farebox.kernel.access import SYSTEM, Role

from factories import make_tenant
from metering_support import shrink

OPERATOR = {"Authorization": "Bearer test-operator-key"}


@pytest.fixture
def client(fb):
    return TestClient(create_app(fb))


@pytest.fixture
def platform(client):
    """The integrating platform, through the client library, on the same app."""
    return Client("http://testserver", "test-operator-key", http=client)


def test_G15_a_refusal_of_entry_is_a_200_answer_with_a_reason(platform, fb):
    make_tenant(fb, tenant_id="h1", catalog="attendee-credits", plan="pro")
    shrink(fb, "h1", "credits", 1)
    ok = platform.join("h1", "o1", "a", mode="live")
    assert (ok.admitted, ok.counted, ok.reason) == (True, True, reasons.ADMITTED)
    no = platform.join("h1", "o1", "b")  # a 200 answer: no exception
    assert (no.admitted, no.counted, no.reason) == (False, False, reasons.CREDITS_EXHAUSTED)


def test_G4_same_idempotency_key_returns_the_first_answer_and_counts_once(platform, fb):
    make_tenant(fb, tenant_id="h2", catalog="agent-sessions", plan="sme")
    first = platform.message("h2", "c1", sender="customer", idempotency_key="msg-1")
    again = platform.message("h2", "c1", sender="customer", idempotency_key="msg-1")
    assert (first.counted, first.replayed) == (True, False)
    assert again.replayed
    assert (again.admitted, again.counted, again.reason) == (first.admitted, first.counted, first.reason)
    with pytest.raises(FareboxError) as other:
        platform.message("h2", "c1", sender="agent", idempotency_key="msg-1")
    assert (other.value.status_code, other.value.code) == (409, reasons.IDEMPOTENCY_CONFLICT)
    assert platform.usage("h2").meters[0].used == 1


def test_A6_session_limit_over_http(client, fb):
    make_tenant(fb, tenant_id="h3", catalog="agent-sessions", plan="sme")
    assert client.put("/v1/tenants/h3/usage/session-limit", json={"sessions": 0}, headers=OPERATOR).status_code == 422
    r = client.put("/v1/tenants/h3/usage/session-limit", json={"sessions": 2}, headers=OPERATOR)
    assert r.status_code == 200 and r.json()["after"] == 2
    assert client.delete("/v1/tenants/h3/usage/session-limit", headers=OPERATOR).json()["after"] is None


def test_G4_ingestion_counts_each_event_once_and_refuses_a_bad_one_by_index(platform, fb):
    make_tenant(fb, tenant_id="h4", catalog="attendee-credits", plan="pro")
    events = [
        {
            "id": "e1",
            "source": "replays",
            "type": "attendee.joined",
            "time": "2026-01-05T09:00:00Z",
            "data": {"occurrence_id": "o1", "person_id": "a", "mode": "replay"},
        },
        {
            "id": "e2",
            "source": "replays",
            "type": "attendee.joined",
            "data": {"occurrence_id": "o1", "person_id": "a", "mode": "on_demand"},
        },
        {"id": "e3", "source": "replays", "type": "nonsense", "data": {}},
        {
            "id": "e1",
            "source": "replays",
            "type": "attendee.joined",
            "time": "2026-01-05T09:00:00Z",
            "data": {"occurrence_id": "o1", "person_id": "a", "mode": "replay"},
        },
        {
            "id": "e1",
            "source": "replays",
            "type": "attendee.joined",
            "data": {"occurrence_id": "o1", "person_id": "zz"},
        },
        {
            "id": "e4",
            "source": "replays",
            "type": "attendee.registered",
            "data": {"occurrence_id": "o1", "person_id": "b"},
        },
    ]
    body = platform.ingest("h4", events)
    assert (body.received, body.applied, body.duplicates, body.refused, body.counted) == (6, 3, 1, 2, 1)
    statuses = [(x.index, x.status, x.code) for x in body.results]
    assert statuses[2] == (2, "refused", reasons.EVENT_INVALID)
    assert statuses[4] == (4, "refused", reasons.EVENT_CONFLICT)
    again = platform.ingest("h4", events[:2])
    assert again.duplicates == 2 and again.counted == 0
    assert platform.usage("h4").meter("credits").used == 1
    assert platform.request("GET", "/v1/usage/verify") == []


def test_G4_a_batch_resent_with_its_idempotency_key_gets_its_first_report_and_another_batch_409(client, fb):
    make_tenant(fb, tenant_id="h6", catalog="attendee-credits", plan="pro")
    events = [
        {
            "id": f"k{i}",
            "source": "live",
            "type": "attendee.joined",
            "data": {"occurrence_id": "o1", "person_id": f"p{i}", "note": "café ☕"},
        }
        for i in range(3)
    ]
    headers = {**OPERATOR, "Idempotency-Key": "batch-1"}
    first = client.post("/v1/tenants/h6/usage/events", json={"events": events}, headers=headers)
    again = client.post("/v1/tenants/h6/usage/events", json={"events": events}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert (first.json()["applied"], first.json()["counted"]) == (3, 3)
    other = client.post("/v1/tenants/h6/usage/events", json={"events": events[:2]}, headers=headers)
    assert other.status_code == 409 and other.json()["error"]["code"] == reasons.IDEMPOTENCY_CONFLICT
    used = client.get("/v1/tenants/h6/usage", headers=OPERATOR).json()
    assert [m["used"] for m in used["meters"] if m["meter"] == "credits"] == [3]


def test_F2_G4_under_an_idempotency_key_a_batch_still_commits_chunk_by_chunk_and_resumes_when_resent(
    client, fb, monkeypatch
):
    """farebox.client sends every write with an Idempotency-Key; a batch sent so is still applied in short
    transactions (F2): another connection sees the first chunk's events while the second is decided.  Cut off in
    its third chunk (503), the batch sent again under its key applies the rest and answers what was committed as
    duplicates, nothing counted twice (G4); once it has answered, the key replays that answer."""
    from sqlalchemy.exc import OperationalError

    from farebox.metering.services import ingestion, ingestion_batch

    make_tenant(fb, tenant_id="h7", catalog="attendee-credits", plan="enterprise")
    monkeypatch.setattr(ingestion, "CHUNK", 2)
    events = [
        {"id": f"c{i}", "source": "logs", "type": "attendee.joined", "data": {"occurrence_id": "o1", "person_id": p}}
        for i, p in enumerate(f"p{n}" for n in range(6))
    ]
    real, seen, calls = ingestion_batch.apply, [], iter(range(100))

    def apply(*args, **kw):
        n = next(calls)
        if n == 1:  # the second chunk: what another transaction (on a thread of its own) sees of the batch now
            reader = threading.Thread(target=lambda: seen.append(_stored_events(fb, "h7")))
            reader.start()
            reader.join()
        if n == 2:
            raise OperationalError("INSERT", {}, Exception("the disk went away"))
        return real(*args, **kw)

    monkeypatch.setattr(ingestion_batch, "apply", apply)
    headers = {**OPERATOR, "Idempotency-Key": "chunked-1"}
    cut = client.post("/v1/tenants/h7/usage/events", json={"events": events}, headers=headers)
    assert cut.status_code == 503 and seen == [2]
    monkeypatch.setattr(ingestion_batch, "apply", real)
    again = client.post("/v1/tenants/h7/usage/events", json={"events": events}, headers=headers)
    assert again.status_code == 200 and "Idempotent-Replayed" not in again.headers
    assert [x["status"] for x in again.json()["results"]] == ["duplicate"] * 4 + ["applied"] * 2
    replayed = client.post("/v1/tenants/h7/usage/events", json={"events": events}, headers=headers)
    assert replayed.json() == again.json() and replayed.headers["Idempotent-Replayed"] == "true"
    used = client.get("/v1/tenants/h7/usage", headers=OPERATOR).json()
    assert [m["used"] for m in used["meters"] if m["meter"] == "credits"] == [6]
    assert client.get("/v1/usage/verify", headers=OPERATOR).json() == []


def test_G4_a_keyed_batch_holds_its_key_a_second_request_under_it_waits_and_writes_nothing(client, fb, monkeypatch):
    """While a batch sent with an Idempotency-Key runs (chunk by chunk), another request under the same key waits
    for it: with another body it then answers 409 having written nothing, with the same body it gets the stored
    report."""
    from farebox.metering.services import ingestion_batch

    make_tenant(fb, tenant_id="h9", catalog="attendee-credits", plan="enterprise")

    def join(event_id: str) -> dict:
        return {"id": event_id, "source": "logs", "type": "attendee.joined",
                "data": {"occurrence_id": "o1", "person_id": event_id}}

    real, started, release = ingestion_batch.apply, threading.Event(), threading.Event()

    def slow(*args, **kw):
        started.set()
        assert release.wait(30)
        return real(*args, **kw)

    monkeypatch.setattr(ingestion_batch, "apply", slow)
    headers = {**OPERATOR, "Idempotency-Key": "held-1"}
    answers: dict[str, Any] = {}

    def send(name: str, events: list[dict]) -> None:
        answers[name] = TestClient(client.app).post("/v1/tenants/h9/usage/events", json={"events": events},
                                                    headers=headers)

    first = threading.Thread(target=send, args=("first", [join("a1"), join("a2")]))
    first.start()
    assert started.wait(30)
    other = threading.Thread(target=send, args=("other", [join("b1")]))
    same = threading.Thread(target=send, args=("same", [join("a1"), join("a2")]))
    other.start()
    same.start()
    other.join(0.5)
    assert other.is_alive() and same.is_alive()  # waiting for the key
    release.set()
    for thread in (first, other, same):
        thread.join(30)
    assert answers["first"].status_code == 200 and answers["first"].json()["applied"] == 2
    assert answers["other"].status_code == 409
    assert answers["other"].json()["error"]["code"] == reasons.IDEMPOTENCY_CONFLICT
    assert answers["same"].json() == answers["first"].json()
    assert answers["same"].headers["Idempotent-Replayed"] == "true"
    assert _stored_events(fb, "h9") == 2  # b1 was never applied


def test_G4_a_refused_keyed_batch_is_not_remembered_a_retry_is_checked_again(client, fb):
    """A batch's refusal may come after some of its chunks committed, so it is not stored under the key: once the
    tenant exists, the same request under the same key is applied."""
    event = {"id": "r1", "source": "logs", "type": "attendee.joined", "data": {"occurrence_id": "o", "person_id": "p"}}
    headers = {**OPERATOR, "Idempotency-Key": "refused-1"}
    refused = client.post("/v1/tenants/h10/usage/events", json={"events": [event]}, headers=headers)
    assert refused.status_code == 404, refused.text
    make_tenant(fb, tenant_id="h10", catalog="attendee-credits", plan="enterprise")
    again = client.post("/v1/tenants/h10/usage/events", json={"events": [event]}, headers=headers)
    assert again.status_code == 200 and again.json()["applied"] == 1


def _stored_events(fb, tenant_id: str) -> int:
    from sqlalchemy import func, select

    from farebox.storage.tables.metering import usage_events

    with fb.uow(readonly=True) as uow:
        return uow.conn.execute(select(func.count()).where(usage_events.c.tenant_id == tenant_id)).scalar()


def test_A1_ingested_messages_of_a_36_hour_conversation_make_two_billable_sessions(client, fb):
    make_tenant(fb, tenant_id="h5", catalog="agent-sessions", plan="sme")  # subscribed at 2026-01-05 09:00
    fb.clock.advance(timedelta(days=2))
    events = [
        {
            "id": f"m{h}",
            "source": "chat",
            "type": "conversation.message",
            "time": f"2026-01-0{5 + (10 + h) // 24}T{(10 + h) % 24:02d}:00:00Z",
            "data": {"conversation_id": "c1", "from": "customer"},
        }
        for h in range(0, 37, 4)
    ]
    body = client.post("/v1/tenants/h5/usage/events", json={"events": events}, headers=OPERATOR).json()
    assert body["counted"] == 2
    top = client.get("/v1/tenants/h5/usage/top", headers=OPERATOR).json()
    assert top == [{"kind": "conversation", "id": "c1", "units": 2, "at": "2026-01-05T10:00:00Z"}]


def test_G6_a_member_cannot_read_usage(client, fb):
    from farebox.tenants.services import tenants

    make_tenant(fb, tenant_id="h6", catalog="agent-sessions", plan="sme")
    issued = tenants.issue_api_key(fb, SYSTEM, tenant_id="h6", role=Role.MEMBER, name="m")
    member = Client("http://testserver", issued.secret, http=client)
    with pytest.raises(FareboxError) as refused:
        member.usage("h6")
    assert (refused.value.status_code, refused.value.code) == (403, reasons.FORBIDDEN)
    # but a member's key may ask admissions (the platform's agents use such keys)
    assert member.message("h6", "c1", sender="customer").admitted is True
