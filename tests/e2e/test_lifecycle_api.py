"""The lifecycle through HTTP: trial, change with `when`, cards, cancel, reactivate,
sales requests, and the errors for impossible requests (G7, G8, G11, A3, A4, A5)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from farebox.entrypoints.api.app import create_app
from farebox.kernel.access import SYSTEM, Role
from farebox.payments import service as payments
from farebox.tenants.services import tenants

OPERATOR = {"Authorization": "Bearer test-operator-key"}
BASE = "/v1/tenants/acme/subscription"


@pytest.fixture
def client(fb):
    with TestClient(create_app(fb)) as c:
        r = c.post("/v1/tenants", json={"id": "acme", "name": "Acme", "owner_email": "o@acme.test"}, headers=OPERATOR)
        assert r.status_code == 201, r.text
        payments.add_payment_method(fb, SYSTEM, "acme", token="4242424242424242")  # paid plans need one (D2)
        yield c


def _key(fb, role):
    return {"Authorization": f"Bearer {tenants.issue_api_key(fb, SYSTEM, tenant_id='acme', role=role).secret}"}


def test_A3_A4_trial_then_second_trial_refused_with_a_reason(client, fb):
    owner = _key(fb, Role.OWNER)
    r = client.post(f"{BASE}/trial", json={"catalog": "agent-sessions", "plan": "sme"}, headers=owner)
    assert r.status_code == 201 and r.json()["status"] == "trialing", r.text
    cards = client.get(f"{BASE}/cards", headers=owner).json()
    assert cards["subscription"]["badge"] == "Trial subscription"
    assert (cards["subscription"]["trial_days_left"], cards["subscription"]["trial_sessions_left"]) == (14, 50)
    assert cards["upcoming"] is None
    assert client.post(f"{BASE}/cancel", headers=owner).status_code == 200
    r = client.post(BASE, json={"catalog": "agent-sessions", "plan": "sme", "trial": True}, headers=owner)
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"  # still live until the trial ends


def test_G7_change_at_period_end_shows_upcoming_card_and_can_be_cancelled(client, fb):
    admin = _key(fb, Role.ADMIN)
    assert client.post(BASE, json={"catalog": "session-caps", "plan": "pro_plus"}, headers=admin).status_code == 201
    headers = {**admin, "Idempotency-Key": "chg-1"}
    r = client.post(f"{BASE}/change", json={"plan": "pro", "when": "end_of_period"}, headers=headers)
    assert r.status_code == 200, r.text
    again = client.post(f"{BASE}/change", json={"plan": "pro", "when": "end_of_period"}, headers=headers)
    assert again.json() == r.json() and again.headers["Idempotent-Replayed"] == "true"
    body = r.json()
    assert (body["immediate"], body["upgrade"], body["upcoming"]["plan"]) == (False, False, "pro")
    cards = client.get(f"{BASE}/cards", headers=admin).json()
    assert (
        cards["upcoming"]["badge"] == "Upcoming subscription"
        and cards["upcoming"]["starts_on"] == body["subscription"]["period_end_at"]
    )
    assert client.get(f"{BASE}/upcoming", headers=admin).json()["plan"] == "pro"
    assert client.post(f"{BASE}/upcoming/cancel", headers=admin).status_code == 200
    r = client.post(f"{BASE}/upcoming/cancel", headers=admin)
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_scheduled_change"


def test_G7_impossible_changes_are_refused_with_codes(client, fb):
    client.post(BASE, json={"catalog": "session-caps", "plan": "pro"}, headers=OPERATOR)
    r = client.post(f"{BASE}/change", json={"plan": "pro"}, headers=OPERATOR)
    assert r.status_code == 409 and r.json()["error"]["code"] == "same_plan"
    r = client.post(f"{BASE}/change", json={"plan": "free", "when": "2020-01-01T00:00:00Z"}, headers=OPERATOR)
    assert r.status_code == 422 and r.json()["error"]["code"] == "change_date_in_past"
    r = client.post(f"{BASE}/change", json={"plan": "free", "when": "tomorrow"}, headers=OPERATOR)
    assert r.status_code == 422


def test_G8_cancel_and_reactivate_and_member_gets_403(client, fb):
    client.post(BASE, json={"catalog": "attendee-credits", "plan": "pro"}, headers=OPERATOR)
    r = client.post(f"{BASE}/cancel", headers=OPERATOR)
    assert r.json()["status"] == "cancellation_scheduled"
    card = client.get(f"{BASE}/cards", headers=OPERATOR).json()["subscription"]
    assert card["badge"] == "Canceled subscription" and card["expires_at"] == r.json()["period_end_at"]
    assert client.post(f"{BASE}/reactivate", headers=OPERATOR).json()["status"] == "active"
    member = _key(fb, Role.MEMBER)
    assert client.post(f"{BASE}/cancel", headers=member).status_code == 403
    assert client.get(f"{BASE}/cards", headers=member).status_code == 403
    transitions = client.get(f"{BASE}/transitions", headers=OPERATOR).json()
    assert [t["to_status"] for t in transitions] == ["active", "cancellation_scheduled", "active"]


def test_L11_preview_and_A5_book_a_demo(client, fb):
    owner = _key(fb, Role.OWNER)
    client.post(BASE, json={"catalog": "agent-sessions", "plan": "sme"}, headers=owner)
    preview = client.get(f"{BASE}/preview", params={"catalog": "attendee-credits", "plan": "pro"}, headers=owner).json()
    assert (
        preview["to_catalog"] == "attendee-credits"
        and preview["currency_changes"] is True
        and preview["due_now_minor"] is None
    )
    r = client.post(f"{BASE}/sales-requests", json={"plan": "enterprise"}, headers=owner)
    assert r.status_code == 201 and r.json()["message"] == "Request received"
    r = client.post(f"{BASE}/change", json={"plan": "enterprise"}, headers=owner)
    assert r.status_code == 409 and r.json()["error"]["code"] == "sales_assisted_plan"
