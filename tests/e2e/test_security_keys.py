"""Issue 17: API keys that can be listed, revoked, rotated and expire (F9, D6), and
idempotency keys scoped to the caller with a retention (F5, F6, F14)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from farebox.entrypoints.api.app import create_app
from farebox.entrypoints.portal.web import SESSION_COOKIE
from farebox.kernel.access import SYSTEM, Role
from farebox.records.services import retention
from farebox.storage.tables.core import idempotency_keys
from farebox.tenants.services import tenants

from factories import make_tenant

OPERATOR = {"Authorization": "Bearer test-operator-key"}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def client(fb):
    with TestClient(create_app(fb), follow_redirects=False) as c:
        yield c


@pytest.fixture
def acme(fb):
    make_tenant(fb, tenant_id="acme")
    return {
        role: tenants.issue_api_key(fb, SYSTEM, tenant_id="acme", role=role).secret
        for role in (Role.OWNER, Role.ADMIN, Role.MEMBER)
    }


def test_F9_D6_an_owner_lists_revokes_and_the_key_is_refused_at_once(fb, client, acme):
    owner, member = bearer(acme[Role.OWNER]), bearer(acme[Role.MEMBER])
    listed = client.get("/v1/tenants/acme/api-keys", headers=owner)
    assert listed.status_code == 200
    assert {k["role"] for k in listed.json()} == {"owner", "admin", "member"} and all(
        k["active"] for k in listed.json()
    )
    assert "secret" not in listed.text and acme[Role.MEMBER].split(".")[1] not in listed.text
    member_id = acme[Role.MEMBER].split(".")[0]
    assert client.get("/v1/tenants/acme", headers=member).status_code == 200
    revoked = client.post(f"/v1/tenants/acme/api-keys/{member_id}/revoke", headers=owner)
    assert revoked.status_code == 200 and revoked.json()["active"] is False and revoked.json()["revoked_at"]
    refused = client.get("/v1/tenants/acme", headers=member)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    assert (
        client.post(f"/v1/tenants/acme/api-keys/{member_id}/revoke", headers=bearer(acme[Role.OWNER])).status_code
        == 200
    )  # again: same answer


def test_F9_members_cannot_manage_keys_and_another_tenant_cannot_see_them(fb, client, acme):
    make_tenant(fb, tenant_id="other", card=None)
    other_owner = bearer(tenants.issue_api_key(fb, SYSTEM, tenant_id="other", role=Role.OWNER).secret)
    owner_id = acme[Role.OWNER].split(".")[0]
    assert client.get("/v1/tenants/acme/api-keys", headers=bearer(acme[Role.MEMBER])).status_code == 403
    assert (
        client.post(f"/v1/tenants/acme/api-keys/{owner_id}/revoke", headers=bearer(acme[Role.MEMBER])).status_code
        == 403
    )
    assert client.post(f"/v1/tenants/acme/api-keys/{owner_id}/revoke", headers=other_owner).status_code == 404
    assert (
        client.post(f"/v1/tenants/other/api-keys/{owner_id}/revoke", headers=other_owner).status_code == 404
    )  # not theirs
    assert client.get("/v1/tenants/acme", headers=bearer(acme[Role.OWNER])).status_code == 200


def test_F9_an_expired_key_is_refused_and_expiry_is_set_when_issued(fb, client, clock, acme):
    issued = client.post("/v1/tenants/acme/api-keys", headers=bearer(acme[Role.OWNER]),
                         json={"role": "member", "expires_at": (clock.now() + timedelta(hours=1)).isoformat()})
    assert issued.status_code == 201 and issued.json()["expires_at"]
    key = bearer(issued.json()["secret"])
    assert client.get("/v1/tenants/acme", headers=key).status_code == 200
    clock.advance(timedelta(hours=1))
    assert client.get("/v1/tenants/acme", headers=key).status_code == 401
    past = client.post(
        "/v1/tenants/acme/api-keys",
        headers=bearer(acme[Role.OWNER]),
        json={"role": "member", "expires_at": "2020-01-01T00:00:00Z"},
    )
    assert past.status_code == 409 and past.json()["error"]["code"] == "expiry_in_past"


def test_F9_rotation_gives_a_new_key_and_the_old_one_stops_after_its_grace(fb, client, clock, acme):
    old = acme[Role.ADMIN]
    rotated = client.post(
        f"/v1/tenants/acme/api-keys/{old.split('.')[0]}/rotate",
        headers=bearer(acme[Role.OWNER]),
        json={"grace_seconds": 60},
    )
    assert rotated.status_code == 201 and rotated.json()["role"] == "admin"
    new = bearer(rotated.json()["secret"])
    assert client.get("/v1/tenants/acme/members", headers=bearer(old)).status_code == 200  # in its grace
    clock.advance(timedelta(seconds=60))
    assert client.get("/v1/tenants/acme/members", headers=bearer(old)).status_code == 401
    assert client.get("/v1/tenants/acme/members", headers=new).status_code == 200
    now = client.post(
        f"/v1/tenants/acme/api-keys/{rotated.json()['key_id']}/rotate", headers=bearer(acme[Role.OWNER]), json={}
    )
    assert now.status_code == 201 and client.get("/v1/tenants/acme/members", headers=new).status_code == 401
    again = client.post(
        f"/v1/tenants/acme/api-keys/{rotated.json()['key_id']}/rotate", headers=bearer(acme[Role.OWNER]), json={}
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "api_key_inactive"


def test_F9_operator_keys_are_listed_revoked_and_end_the_portal_session_opened_with_them(fb, client):
    issued = client.post("/v1/api-keys", headers=OPERATOR, json={"name": "ci"})
    assert issued.status_code == 201 and issued.json()["role"] == "operator" and issued.json()["tenant_id"] is None
    secret, key_id = issued.json()["secret"], issued.json()["key_id"]
    assert [k["key_id"] for k in client.get("/v1/api-keys", headers=OPERATOR).json()] == [key_id]
    form = client.get("/portal/operator")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    signed_in = client.post("/portal/operator", data={"csrf_token": csrf, "api_key": secret})
    assert signed_in.status_code == 303 and client.get("/portal/console").status_code == 200
    assert client.post(f"/v1/api-keys/{key_id}/revoke", headers=OPERATOR).status_code == 200
    assert client.get("/v1/tenants", headers=bearer(secret)).status_code == 401
    after = client.get("/portal/console")
    assert after.status_code == 303 and after.headers["location"] == "/portal/sign-in"


def test_F9_a_portal_session_ends_when_its_operator_key_expires(fb, client, clock):
    issued = tenants.issue_api_key(
        fb, SYSTEM, tenant_id=None, role=Role.OPERATOR, expires_at=clock.now() + timedelta(hours=1)
    )
    form = client.get("/portal/operator")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    client.post("/portal/operator", data={"csrf_token": csrf, "api_key": issued.secret})
    assert client.get("/portal/console").status_code == 200
    clock.advance(timedelta(hours=1))
    assert client.get("/portal/console").status_code == 303
    assert client.cookies.get(SESSION_COOKIE)


def test_F5_a_member_never_gets_the_owners_stored_answer(fb, client, acme):
    owner = {**bearer(acme[Role.OWNER]), "Idempotency-Key": "K"}
    member = {**bearer(acme[Role.MEMBER]), "Idempotency-Key": "K"}
    first = client.post("/v1/tenants/acme/payment-methods", headers=owner, json={"token": "4242 4242 4242 4242"})
    assert first.status_code == 201
    replay = client.post("/v1/tenants/acme/payment-methods", headers=member, json={"token": "4242 4242 4242 4242"})
    assert replay.status_code == 403 and "idempotent-replayed" not in replay.headers
    same = client.post("/v1/tenants/acme/payment-methods", headers=owner, json={"token": "4242 4242 4242 4242"})
    assert same.status_code == 201 and same.headers["idempotent-replayed"] == "true" and same.json() == first.json()


def test_F5_a_members_refusal_does_not_poison_the_owners_key(fb, client):
    make_tenant(fb, tenant_id="acme", catalog="session-caps", plan="pro")
    owner = {
        **bearer(tenants.issue_api_key(fb, SYSTEM, tenant_id="acme", role=Role.OWNER).secret),
        "Idempotency-Key": "K2",
    }
    member = {
        **bearer(tenants.issue_api_key(fb, SYSTEM, tenant_id="acme", role=Role.MEMBER).secret),
        "Idempotency-Key": "K2",
    }
    assert client.post("/v1/tenants/acme/subscription/cancel", headers=member).status_code == 403
    cancelled = client.post("/v1/tenants/acme/subscription/cancel", headers=owner)
    assert cancelled.status_code == 200 and "idempotent-replayed" not in cancelled.headers
    assert cancelled.json()["cancel_at_period_end"] is True


def test_F6_one_operator_key_has_a_namespace_per_tenant(fb, client):
    for tenant_id in ("acme", "globex"):
        make_tenant(fb, tenant_id=tenant_id, catalog="session-caps", plan="pro")
    headers = {**OPERATOR, "Idempotency-Key": "join-o1-alice"}
    for tenant_id in ("acme", "globex"):
        r = client.post(f"/v1/tenants/{tenant_id}/occurrences/o1/join", headers=headers, json={"person_id": "alice"})
        assert r.status_code == 200 and r.json()["admitted"] is True and "idempotent-replayed" not in r.headers


def test_F14_stored_answers_are_forgotten_after_24_hours_by_the_sweep(fb, client, clock, acme):
    def stored() -> int:
        with fb.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(idempotency_keys)).scalar_one()

    headers = {**bearer(acme[Role.OWNER]), "Idempotency-Key": "add-member"}
    assert (
        client.post(
            "/v1/tenants/acme/members", headers=headers, json={"email": "a@acme.test", "role": "member"}
        ).status_code
        == 201
    )
    assert stored() == 1
    clock.advance(retention.IDEMPOTENCY_RETENTION - timedelta(seconds=1))
    assert retention.sweep(fb).idempotency_keys == 0 and stored() == 1
    clock.advance(timedelta(seconds=1))
    assert retention.sweep(fb).idempotency_keys == 1 and stored() == 0
    retried = client.post("/v1/tenants/acme/members", headers=headers, json={"email": "a@acme.test", "role": "member"})
    assert retried.status_code == 409 and retried.json()["error"]["code"] == "member_exists"  # run again, not replayed


def test_F14_the_worker_pass_sweeps(fb, clock, acme):
    from farebox.events import due

    with fb.uow() as uow:
        uow.conn.execute(
            idempotency_keys.insert().values(
                tenant_id="acme",
                principal="owner",
                key="old",
                request_hash="x",
                status_code=200,
                response={},
                created_at=clock.now() - timedelta(days=2),
            )
        )
        uow.commit()
    retention._last_sweep.pop(id(fb), None)
    due.run_due(fb)
    with fb.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(idempotency_keys)).scalar_one() == 0


def test_F9_D6_an_owner_issues_rotates_and_revokes_keys_in_the_portal(fb, client, acme):
    from farebox.kernel.access import Principal
    from farebox.tenants.services import sign_in as portal_auth

    session = portal_auth._open_session(fb, Principal(Role.OWNER, tenant_id="acme", email="owner@acme.test"))
    client.cookies.set(SESSION_COOKIE, session.token)
    page = client.get("/portal/t/acme/keys")
    assert (
        page.status_code == 200
        and acme[Role.MEMBER].split(".")[0] in page.text
        and acme[Role.MEMBER].split(".")[1] not in page.text
    )
    made = client.post(
        "/portal/t/acme/keys",
        data={"csrf_token": session.csrf_token, "role": "member", "name": "bot", "expires_in_days": "30"},
    )
    secret = re.search(r'<code class="secret">([^<]+)</code>', made.text).group(1)
    assert client.get("/v1/tenants/acme", headers=bearer(secret)).status_code == 200
    rotated = client.post(
        f"/portal/t/acme/keys/{secret.split('.')[0]}/rotate",
        data={"csrf_token": session.csrf_token, "grace_hours": "0"},
    )
    new_secret = re.search(r'<code class="secret">([^<]+)</code>', rotated.text).group(1)
    assert client.get("/v1/tenants/acme", headers=bearer(secret)).status_code == 401
    revoked = client.post(
        f"/portal/t/acme/keys/{new_secret.split('.')[0]}/revoke", data={"csrf_token": session.csrf_token}
    )
    assert revoked.status_code == 200 and "is revoked" in revoked.text
    assert client.get("/v1/tenants/acme", headers=bearer(new_secret)).status_code == 401
    refused = client.post(f"/portal/t/acme/keys/{secret.split('.')[0]}/rotate", data={"csrf_token": session.csrf_token})
    assert refused.status_code == 200 and "revoked or expired" in refused.text
