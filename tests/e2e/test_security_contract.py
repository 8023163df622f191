"""Issue 17 F11 and issue 16 D13/D14: a body that is not JSON is `invalid_json` (not field "18"), and an
error code's `details` always has one shape: `problems`, each naming a field."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from farebox.entrypoints.api.app import create_app

from factories import make_tenant

OPERATOR = {"Authorization": "Bearer test-operator-key"}
JSON = {**OPERATOR, "Content-Type": "application/json"}


@pytest.fixture
def client(fb):
    make_tenant(fb, tenant_id="acme", catalog="session-caps", plan="pro")
    with TestClient(create_app(fb)) as c:
        yield c


def _error(response) -> dict:
    assert response.status_code == 422, response.text
    return response.json()["error"]


@pytest.mark.parametrize("body, position", [(b'{"person_id": "a",', 18), (b"person_id=a", 0), (b"\xff\xfe", None)])
def test_D13_F11_a_body_that_is_not_json_is_invalid_json_not_a_field(client, body, position):
    error = _error(client.post("/v1/tenants/acme/occurrences/o/join", content=body, headers=JSON))
    assert error["code"] == "invalid_json" and error["message"].startswith("The body is not valid JSON")
    assert error["details"]["problems"][0]["field"] == ""
    if position is not None:
        assert f"at character {position}" in error["message"]


def test_F11_undecodable_bytes_on_a_put_are_a_documented_422(client):
    error = _error(client.put("/v1/tenants/acme/usage/session-limit", content=b"\xff\xfe", headers=JSON))
    assert error["code"] == "invalid_json"


def test_D13_an_empty_body_and_a_json_array_say_what_is_wrong(client):
    assert (
        _error(client.post("/v1/tenants/acme/occurrences/o/join", content=b"", headers=JSON))["message"]
        == "A JSON body is required."
    )
    assert (
        _error(client.post("/v1/tenants/acme/occurrences/o/join", json=[1], headers=OPERATOR))["message"]
        == "The body must be a JSON object."
    )


def test_D13_a_nul_character_names_its_field(client):
    error = _error(client.post("/v1/tenants/acme/occurrences/o/join", json={"person_id": "a\x00"}, headers=OPERATOR))
    assert error["details"]["problems"] == [
        {"field": "person_id", "message": "text must not contain NUL (\\u0000) characters", "type": "value_error"}
    ]


def test_D14_validation_errors_always_carry_problems(client):
    clock = client.post("/v1/test-clocks", json={"name": "c"}, headers=OPERATOR).json()["id"]
    for response in (
        client.post(
            f"/v1/test-clocks/{clock}/advance", json={"by": "1d", "to": "2027-01-01T00:00:00Z"}, headers=OPERATOR
        ),
        client.post("/v1/tenants/acme/api-keys", json={"role": "operator"}, headers=OPERATOR),
        client.post("/v1/tenants/acme/members", json={"email": "x@acme.test", "role": "operator"}, headers=OPERATOR),
        client.post(
            "/v1/tenants/acme/subscription/change", json={"plan": "free", "when": "sometime"}, headers=OPERATOR
        ),
    ):
        error = _error(response)
        assert error["code"] == "validation_error" and set(error["details"]) == {"problems"}, error
        assert all(set(p) == {"field", "message", "type"} and p["field"] for p in error["details"]["problems"]), error
        assert "[" not in error["details"]["problems"][0]["field"], error  # no pydantic union member types (D14)
    when = client.post(
        "/v1/tenants/acme/subscription/change", json={"plan": "free", "when": "sometime"}, headers=OPERATOR
    ).json()
    assert [p["field"] for p in when["error"]["details"]["problems"]] == ["when"]


def test_F11_the_schema_states_the_rules_requests_are_refused_for(fb):
    schema = create_app(fb).openapi()
    components = schema["components"]["schemas"]
    assert components["TenantIn"]["properties"]["name"]["pattern"] == r"^[^\x00]*$"
    assert "\\x00" in components["TenantIn"]["properties"]["owner_email"]["pattern"]
    assert components["MemberIn"]["properties"]["role"]["enum"] == ["owner", "admin", "member"]
    assert components["ApiKeyIn"]["properties"]["role"]["enum"] == ["owner", "admin", "member"]
    assert {"required": ["bundled"], "not": {"required": ["document"]}} in components["CatalogLoadIn"]["oneOf"]
    assert {"required": ["to"], "not": {"required": ["by"]}} in components["AdvanceIn"]["oneOf"]
    assert components["EndpointIn"]["properties"]["url"]["minLength"] >= 8
    join = schema["paths"]["/v1/tenants/{tenant_id}/occurrences/{occurrence_id}/join"]["post"]
    assert all(p["schema"].get("pattern") for p in join["parameters"] if p["in"] == "path")
