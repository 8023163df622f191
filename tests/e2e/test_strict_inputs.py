"""D8: request bodies are typed strictly. `{"sessions": true}` set a limit of 1 and
`{"sessions": "10"}` one of 10; a number or a yes/no must be given as one, or the
answer is a 422 that names the field."""

from __future__ import annotations

import typing
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, ValidationError

from farebox.entrypoints.api import app as api_app
from farebox.entrypoints.api.app import create_app

from factories import make_tenant

OPERATOR = {"Authorization": "Bearer test-operator-key"}


@pytest.fixture
def client(fb):
    return TestClient(create_app(fb))


def _field(response) -> list[str]:
    assert response.status_code == 422, response.text
    body = response.json()["error"]
    assert body["code"] == "validation_error"
    return [p["field"] for p in body["details"]["problems"]]


@pytest.mark.parametrize("sessions", [True, "10", 10.5, "1e1", None])
def test_D8_a_session_limit_must_be_a_json_number(client, fb, sessions):
    make_tenant(fb, tenant_id="strict", catalog="agent-sessions", plan="sme")
    r = client.put("/v1/tenants/strict/usage/session-limit", json={"sessions": sessions}, headers=OPERATOR)
    assert _field(r) == ["sessions"]
    usage = client.get("/v1/tenants/strict/usage", headers=OPERATOR).json()
    assert [m["limit"] for m in usage["meters"]] == [m["included"] for m in usage["meters"]] == [600]  # nothing was set
    assert (
        client.put("/v1/tenants/strict/usage/session-limit", json={"sessions": 10}, headers=OPERATOR).json()["after"]
        == 10
    )


def test_D8_yes_no_fields_and_instants_refuse_look_alikes(client, fb):
    make_tenant(fb, tenant_id="strict", catalog="agent-sessions", plan="sme")
    r = client.put(
        "/v1/tenants/strict/notification-channels", json={"channel": "email", "enabled": "yes"}, headers=OPERATOR
    )
    assert _field(r) == ["enabled"]
    assert _field(client.post("/v1/test-clocks", json={"name": "c", "start": 0}, headers=OPERATOR)) == ["start"]
    r = client.post("/v1/tenants", json={"id": "t2", "name": "T", "owner_email": "o@t2.test"}, headers=OPERATOR)
    assert r.status_code == 201
    assert _field(
        client.post(
            "/v1/tenants/t2/subscription",
            json={"catalog": "agent-sessions", "plan": "sme", "trial": 1},
            headers=OPERATOR,
        )
    ) == ["trial"]


def _request_models() -> list[type[BaseModel]]:
    assert api_app  # every router is imported with the app
    seen: list[type[BaseModel]] = []
    stack = list(BaseModel.__subclasses__())
    while stack:
        model = stack.pop()
        stack.extend(model.__subclasses__())
        if (
            model.__module__.startswith("farebox.entrypoints.api")
            and model.__name__.endswith("In")
            and model not in seen
        ):
            seen.append(model)
    return seen


def _kinds(annotation: object) -> set[type]:
    args = typing.get_args(annotation)
    found = {annotation} if annotation in (int, bool, datetime) else set()
    for arg in args:
        found |= _kinds(arg)
    return found


LOOK_ALIKES: dict[type, list[object]] = {
    int: [True, "10", 10.5],  # 10.0 is a JSON integer (JSON Schema's `integer`), as schemathesis sends it
    bool: [1, "true", "yes"],
    datetime: [0, 1_800_000_000],
}


def test_D8_every_request_schema_refuses_look_alikes_for_numbers_yes_no_and_instants():
    """Every request body's number, yes/no and instant fields: found by walking the schemas, not listed by hand."""
    checked = []
    for model in _request_models():
        for name, info in model.model_fields.items():
            for kind in _kinds(info.annotation):
                for value in LOOK_ALIKES[kind]:
                    with pytest.raises(ValidationError) as refused:
                        model.model_validate({(info.alias or name): value})
                    assert any(e["loc"][:1] == (info.alias or name,) for e in refused.value.errors()), (
                        model,
                        name,
                        value,
                    )
                checked.append(f"{model.__name__}.{name}")
    assert {
        "SessionLimitIn.sessions",
        "SubscribeIn.trial",
        "ChannelIn.enabled",
        "RotateIn.grace_hours",
        "ClockIn.start",
        "AdvanceIn.to",
    } <= set(checked), checked
