"""Admission and usage through HTTP: decisions answer 200, idempotency keys count once (G4, G15)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from factories import make_tenant
from farebox.domain.access import SYSTEM, Role
from farebox.entrypoints.api.app import create_app
from metering_support import shrink

OPERATOR = {"Authorization": "Bearer test-operator-key"}


@pytest.fixture
def client(fb):
    return TestClient(create_app(fb))


def test_G15_a_refusal_of_entry_is_a_200_answer_with_a_reason(client, fb):
    make_tenant(fb, tenant_id="h1", catalog="attendee-credits", plan="pro")
    shrink(fb, "h1", "credits", 1)
    ok = client.post("/v1/tenants/h1/occurrences/o1/join", json={"person_id": "a", "mode": "live"}, headers=OPERATOR)
    assert ok.status_code == 200 and ok.json()["admitted"] is True and ok.json()["counted"] is True
    no = client.post("/v1/tenants/h1/occurrences/o1/join", json={"person_id": "b"}, headers=OPERATOR)
    assert no.status_code == 200
    assert {k: no.json()[k] for k in ("admitted", "counted", "reason")} == {"admitted": False, "counted": False, "reason": "credits_exhausted"}


def test_G4_same_idempotency_key_returns_the_first_answer_and_counts_once(client, fb):
    make_tenant(fb, tenant_id="h2", catalog="agent-sessions", plan="sme")
    headers = {**OPERATOR, "Idempotency-Key": "msg-1"}
    first = client.post("/v1/tenants/h2/conversations/c1/messages", json={"from": "customer"}, headers=headers)
    again = client.post("/v1/tenants/h2/conversations/c1/messages", json={"from": "customer"}, headers=headers)
    assert first.json() == again.json() and first.json()["counted"] is True
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = client.post("/v1/tenants/h2/conversations/c1/messages", json={"from": "agent"}, headers=headers)
    assert other.status_code == 409
    usage = client.get("/v1/tenants/h2/usage", headers=OPERATOR).json()
    assert usage["meters"][0]["used"] == 1


def test_A6_session_limit_over_http(client, fb):
    make_tenant(fb, tenant_id="h3", catalog="agent-sessions", plan="sme")
    assert client.put("/v1/tenants/h3/usage/session-limit", json={"sessions": 0}, headers=OPERATOR).status_code == 422
    r = client.put("/v1/tenants/h3/usage/session-limit", json={"sessions": 2}, headers=OPERATOR)
    assert r.status_code == 200 and r.json()["after"] == 2
    assert client.delete("/v1/tenants/h3/usage/session-limit", headers=OPERATOR).json()["after"] is None


def test_G4_ingestion_counts_each_event_once_and_refuses_a_bad_one_by_index(client, fb):
    make_tenant(fb, tenant_id="h4", catalog="attendee-credits", plan="pro")
    events = [
        {"id": "e1", "source": "replays", "type": "attendee.joined", "time": "2026-01-05T09:00:00Z", "data": {"occurrence_id": "o1", "person_id": "a", "mode": "replay"}},
        {"id": "e2", "source": "replays", "type": "attendee.joined", "data": {"occurrence_id": "o1", "person_id": "a", "mode": "on_demand"}},
        {"id": "e3", "source": "replays", "type": "nonsense", "data": {}},
        {"id": "e1", "source": "replays", "type": "attendee.joined", "time": "2026-01-05T09:00:00Z", "data": {"occurrence_id": "o1", "person_id": "a", "mode": "replay"}},
        {"id": "e1", "source": "replays", "type": "attendee.joined", "data": {"occurrence_id": "o1", "person_id": "zz"}},
        {"id": "e4", "source": "replays", "type": "attendee.registered", "data": {"occurrence_id": "o1", "person_id": "b"}},
    ]
    r = client.post("/v1/tenants/h4/usage/events", json={"events": events}, headers=OPERATOR)
    assert r.status_code == 200
    body = r.json()
    assert (body["received"], body["applied"], body["duplicates"], body["refused"], body["counted"]) == (6, 3, 1, 2, 1)
    statuses = [(x["index"], x["status"], x["code"]) for x in body["results"]]
    assert statuses[2] == (2, "refused", "event_invalid") and statuses[4] == (4, "refused", "event_conflict")
    again = client.post("/v1/tenants/h4/usage/events", json={"events": events[:2]}, headers=OPERATOR).json()
    assert again["duplicates"] == 2 and again["counted"] == 0
    assert client.get("/v1/tenants/h4/usage", headers=OPERATOR).json()["meters"][0]["used"] == 1
    assert client.get("/v1/usage/verify", headers=OPERATOR).json() == []


def test_A1_ingested_messages_of_a_36_hour_conversation_make_two_billable_sessions(client, fb):
    make_tenant(fb, tenant_id="h5", catalog="agent-sessions", plan="sme")  # subscribed at 2026-01-05 09:00
    fb.clock.advance(timedelta(days=2))
    events = [
        {"id": f"m{h}", "source": "chat", "type": "conversation.message", "time": f"2026-01-0{5 + (10 + h) // 24}T{(10 + h) % 24:02d}:00:00Z", "data": {"conversation_id": "c1", "from": "customer"}}
        for h in range(0, 37, 4)
    ]
    body = client.post("/v1/tenants/h5/usage/events", json={"events": events}, headers=OPERATOR).json()
    assert body["counted"] == 2
    top = client.get("/v1/tenants/h5/usage/top", headers=OPERATOR).json()
    assert top == [{"kind": "conversation", "id": "c1", "units": 2, "at": "2026-01-05T10:00:00Z"}]


def test_G6_a_member_cannot_read_usage(client, fb):
    from farebox.services import tenants

    make_tenant(fb, tenant_id="h6", catalog="agent-sessions", plan="sme")
    issued = tenants.issue_api_key(fb, SYSTEM, tenant_id="h6", role=Role.MEMBER, name="m")
    r = client.get("/v1/tenants/h6/usage", headers={"Authorization": f"Bearer {issued.secret}"})
    assert r.status_code == 403
    # but a member's key may ask admissions (the platform's agents use such keys)
    r = client.post("/v1/tenants/h6/conversations/c1/messages", json={"from": "customer"}, headers={"Authorization": f"Bearer {issued.secret}"})
    assert r.status_code == 200 and r.json()["admitted"] is True
