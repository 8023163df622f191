"""The HTTP API: OpenAPI, one error shape, keys and roles, idempotency keys (G4, G6)."""

import pytest
from fastapi.testclient import TestClient

from farebox.entrypoints.api.app import create_app
from farebox.kernel.access import SYSTEM, Role
from farebox.tenants.services import tenants

OPERATOR = {"Authorization": "Bearer test-operator-key"}


@pytest.fixture
def client(fb):
    with TestClient(create_app(fb)) as c:
        yield c


def _tenant(client, tenant_id="acme"):
    r = client.post(
        "/v1/tenants", json={"id": tenant_id, "name": tenant_id, "owner_email": f"o@{tenant_id}.test"}, headers=OPERATOR
    )
    assert r.status_code == 201, r.text
    return r.json()


def _key(fb, tenant_id, role):
    return {"Authorization": f"Bearer {tenants.issue_api_key(fb, SYSTEM, tenant_id=tenant_id, role=role).secret}"}


def test_healthz_and_openapi(client):
    assert client.get("/healthz").text == "ok"
    schema = client.get("/openapi.json").json()
    assert "/v1/tenants" in schema["paths"]
    assert client.get("/docs").status_code == 200


def test_G15_missing_and_wrong_keys_get_401_in_the_error_shape(client):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"X-API-Key": "fbk_x.y"}):
        r = client.get("/v1/tenants", headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "unauthorized" and r.json()["error"]["message"]


def test_validation_errors_are_422_naming_the_field(client):
    r = client.post("/v1/tenants", json={"id": "Bad Id", "name": "x", "owner_email": "o@x.test"}, headers=OPERATOR)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "validation_error" and error["details"]["problems"][0]["field"] == "id"
    assert "id" in error["message"]


def test_G4_same_idempotency_key_returns_the_first_answer_other_body_409(client):
    headers = {**OPERATOR, "Idempotency-Key": "k-1"}
    body = {"id": "acme", "name": "Acme", "owner_email": "o@acme.test"}
    first = client.post("/v1/tenants", json=body, headers=headers)
    again = client.post("/v1/tenants", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again.headers["Idempotent-Replayed"] == "true"
    other = client.post("/v1/tenants", json={**body, "name": "Other"}, headers=headers)
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_conflict"
    assert len(client.get("/v1/tenants", headers=OPERATOR).json()) == 1


def test_G4_a_refusal_is_replayed_too_and_writes_nothing(client):
    _tenant(client, "acme")
    headers = {**OPERATOR, "Idempotency-Key": "k-2"}
    body = {"catalog": "agent-sessions", "plan": "nope"}
    first = client.post("/v1/tenants/acme/subscription", json=body, headers=headers)
    assert first.status_code == 404 and first.json()["error"]["code"] == "plan_not_found"
    again = client.post("/v1/tenants/acme/subscription", json=body, headers=headers)
    assert again.json() == first.json() and again.status_code == 404
    assert client.get("/v1/tenants/acme/subscription", headers=OPERATOR).status_code == 404


def test_G6_billing_is_owner_and_admin_only_and_tenants_are_isolated(client, fb):
    _tenant(client, "acme")
    _tenant(client, "globex")
    owner, member = _key(fb, "acme", Role.OWNER), _key(fb, "acme", Role.MEMBER)
    r = client.post("/v1/tenants/acme/subscription", json={"catalog": "attendee-credits", "plan": "pro"}, headers=owner)
    assert r.status_code == 402 and r.json()["error"]["code"] == "payment_method_required"  # D2: no card yet
    assert (
        client.post("/v1/tenants/acme/payment-methods", json={"token": "4242424242424242"}, headers=owner).status_code
        == 201
    )
    r = client.post("/v1/tenants/acme/subscription", json={"catalog": "attendee-credits", "plan": "pro"}, headers=owner)
    assert r.status_code == 201 and r.json()["status"] == "active"
    assert client.get("/v1/tenants/acme/subscription", headers=_key(fb, "acme", Role.ADMIN)).status_code == 200
    r = client.get("/v1/tenants/acme/subscription", headers=member)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    outsider = _key(fb, "globex", Role.OWNER)
    assert client.get("/v1/tenants/acme/subscription", headers=outsider).status_code == 404
    assert client.get("/v1/tenants/acme", headers=outsider).status_code == 404
    assert client.get("/v1/tenants", headers=owner).status_code == 403


def test_G2_test_clock_over_http(client):
    _tenant(client, "acme")
    clock = client.post("/v1/test-clocks", json={"name": "c", "start": "2027-01-31T12:00:00Z"}, headers=OPERATOR).json()
    assert client.post(f"/v1/test-clocks/{clock['id']}/tenants", json={"tenant_id": "acme"}, headers=OPERATOR).json()[
        "tenants"
    ] == ["acme"]
    assert (
        client.post(
            "/v1/tenants/acme/payment-methods", json={"token": "4242424242424242"}, headers=OPERATOR
        ).status_code
        == 201
    )
    client.post("/v1/tenants/acme/subscription", json={"catalog": "agent-sessions", "plan": "sme"}, headers=OPERATOR)
    r = client.post(f"/v1/test-clocks/{clock['id']}/advance", json={"by": "30d"}, headers=OPERATOR)
    assert r.status_code == 200
    assert [p["due_at"] for p in r.json()["processed"]] == ["2027-02-28T12:00:00Z"]
    r = client.post(f"/v1/test-clocks/{clock['id']}/advance", json={"to": "2027-01-01T00:00:00Z"}, headers=OPERATOR)
    assert r.status_code == 409 and r.json()["error"]["code"] == "clock_backwards"


def test_catalogs_load_by_bundled_name_or_yaml_text_never_a_server_path(client):
    r = client.post("/v1/catalogs", json={"bundled": "agent-sessions"}, headers=OPERATOR)
    assert r.status_code == 200 and r.json()["unchanged"]
    r = client.post("/v1/catalogs", json={"bundled": "/etc/passwd"}, headers=OPERATOR)
    assert r.status_code == 404 and r.json()["error"]["code"] == "catalog_not_found"
    r = client.post(
        "/v1/catalogs",
        json={
            "document": "name: tiny\ntitle: Tiny\nmeters: {}\n"
            "plans: {solo: {name: Solo, price: '5.00', interval: month}}\n"
        },
        headers=OPERATOR,
    )
    assert r.status_code == 200 and r.json()["added"] == ["solo v1"]
    r = client.post("/v1/catalogs", json={"document": "name: tiny\nplans: {}\n"}, headers=OPERATOR)
    assert r.status_code == 422 and r.json()["error"]["code"] == "catalog_invalid"
    r = client.post("/v1/catalogs", json={"bundled": "agent-sessions", "document": "x"}, headers=OPERATOR)
    assert r.status_code == 422


def _catalog_with(price: str) -> str:
    return (
        "name: tiny\ntitle: Tiny\nmeters: {}\n"
        "plans: {free: {name: Free, price: '0.00', interval: month}, "
        f"solo: {{name: Solo, price: '{price}', interval: month}}}}\n"
    )


def test_D1_D4_D9_catalogs_sent_over_http_refuse_nonsense_naming_plan_and_field(client):
    for document, expected in (
        (_catalog_with("-29.00"), "must not be negative"),
        (_catalog_with("99999999999999999999999.00"), "at most"),
        (_catalog_with("5.00").replace("price: '5.00'", "price: '5.00', price: '0.00'"), "duplicate key"),
    ):
        r = client.post("/v1/catalogs", json={"document": document}, headers=OPERATOR)
        assert r.status_code == 422 and r.json()["error"]["code"] == "catalog_invalid", r.text
        problems = r.json()["error"]["details"]["problems"]
        assert any("plan 'solo'" in p and "field 'price'" in p and expected in p for p in problems), problems
    assert "tiny" not in [c["name"] for c in client.get("/v1/catalogs", headers=OPERATOR).json()]


def test_D4_the_largest_catalog_price_is_invoiced_and_stored(client):
    """The bound is what a money column holds on SQLite and PostgreSQL: the top price bills, with tax, no 500."""
    from farebox.catalog.domain import MAX_PRICE_MINOR

    top = f"{MAX_PRICE_MINOR // 100}.{MAX_PRICE_MINOR % 100:02d}"
    assert client.post("/v1/catalogs", json={"document": _catalog_with(top)}, headers=OPERATOR).status_code == 200
    _tenant(client, "acme")
    assert (
        client.patch("/v1/tenants/acme/billing-details", json={"tax_rate_bp": 10_000}, headers=OPERATOR).status_code
        == 200
    )
    assert (
        client.post(
            "/v1/tenants/acme/payment-methods", json={"token": "4242424242424242"}, headers=OPERATOR
        ).status_code
        == 201
    )
    r = client.post("/v1/tenants/acme/subscription", json={"catalog": "tiny", "plan": "solo"}, headers=OPERATOR)
    assert r.status_code == 201, r.text
    invoices = client.get("/v1/tenants/acme/invoices", headers=OPERATOR).json()
    assert [(i["subtotal_minor"], i["total_minor"]) for i in invoices] == [
        (MAX_PRICE_MINOR, 2 * MAX_PRICE_MINOR)
    ]  # 100 % tax


def test_G15_nul_characters_are_refused_with_422_not_stored(client):
    """G15: text the store cannot keep faithfully is a clear 4xx, never a 500."""
    r = client.get("/v1/tenants", params={"search": "a\x00b"}, headers=OPERATOR)
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    r = client.post("/v1/tenants", json={"name": "bad\x00name", "owner_email": "o@example.com"}, headers=OPERATOR)
    assert r.status_code == 422 and "NUL" in r.json()["error"]["message"]
