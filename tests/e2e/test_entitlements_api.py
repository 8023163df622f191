"""Entitlements over HTTP and the CLI: may this tenant use a feature of its plan (S2, L5; audit #8)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from farebox.entrypoints.api.app import create_app
from farebox.entrypoints.cli import app as cli

from factories import make_tenant

OPERATOR = {"Authorization": "Bearer test-operator-key"}


@pytest.fixture
def client(fb):
    return TestClient(create_app(fb))


def test_S2_L5_entitlements_follow_the_plan(client, fb):
    make_tenant(fb, tenant_id="fr", catalog="attendee-credits", plan="free", card=None)
    make_tenant(fb, tenant_id="pr", catalog="session-caps", plan="pro")
    premium = client.get("/v1/tenants/fr/entitlements/premium", headers=OPERATOR)
    assert premium.status_code == 200
    body = premium.json()
    assert (body["allowed"], body["reason"], body["plan"]) == (False, "feature_not_available", "free")  # L5
    assert body["message"] == "Your plan does not include premium; upgrade to a plan that does."
    cohosts = client.get("/v1/tenants/pr/entitlements/cohosts", headers=OPERATOR).json()
    assert (cohosts["allowed"], cohosts["reason"], cohosts["seats"]) == (True, "feature_available", 1)  # S2
    sso = client.get("/v1/tenants/pr/entitlements/sso", headers=OPERATOR).json()
    assert (sso["allowed"], sso["features"]) == (False, ["cohosts"])


def test_entitlements_refuse_a_tenant_without_a_live_subscription_and_a_bad_name(client, fb):
    make_tenant(fb, tenant_id="none", card=None)
    nothing = client.get("/v1/tenants/none/entitlements/sso", headers=OPERATOR).json()
    assert (nothing["allowed"], nothing["reason"], nothing["plan"]) == (False, "subscription_expired", None)
    assert client.get("/v1/tenants/none/entitlements/SSO!", headers=OPERATOR).status_code == 422
    assert client.get("/v1/tenants/ghost/entitlements/sso", headers=OPERATOR).status_code == 404


def test_the_cli_answers_and_exits_1_when_the_plan_lacks_the_feature(fb, monkeypatch):
    make_tenant(fb, tenant_id="cl", catalog="session-caps", plan="pro")
    monkeypatch.setattr("farebox.entrypoints.cli_entitlements.bootstrap", lambda: fb)
    yes = CliRunner().invoke(cli, ["entitlements", "check", "cl", "cohosts"])
    no = CliRunner().invoke(cli, ["entitlements", "check", "cl", "sso"])
    ghost = CliRunner().invoke(cli, ["entitlements", "check", "ghost", "sso"])
    assert yes.exit_code == 0 and "yes cohosts on plan pro: feature_available" in yes.output
    assert no.exit_code == 1 and "no sso on plan pro: feature_not_available" in no.output
    assert ghost.exit_code == 1
