"""The portal: magic-link sign-in, CSRF, the Billing tab for owners/admins only (G6),
and the operator console with test clocks."""

import re

import pytest
from fastapi.testclient import TestClient

from farebox.entrypoints.api.app import create_app
from farebox.kernel.access import SYSTEM, Role
from farebox.tenants.services import tenants

from factories import make_tenant


@pytest.fixture
def links(fb):
    sent = []
    fb.send_sign_in_link = lambda email, link: sent.append((email, link))
    return sent


@pytest.fixture
def client(fb, links):
    with TestClient(create_app(fb), follow_redirects=False) as c:
        yield c


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def redeem(client, link):
    """Open the link (a page), then press its button (the POST that uses the link up; F10)."""
    path = link.replace("http://testserver", "")
    confirm = client.get(path)
    assert confirm.status_code == 200, confirm.text
    return client.post(path, data={"csrf_token": _csrf(confirm.text)})


def sign_in(client, links, tenant_id, email):
    form = client.get("/portal/sign-in")
    r = client.post("/portal/sign-in", data={"csrf_token": _csrf(form.text), "tenant_id": tenant_id, "email": email})
    assert r.status_code == 200 and "Check your e-mail" in r.text
    email_sent, link = links[-1]
    assert email_sent == email
    r = redeem(client, link)
    assert r.status_code == 303 and r.headers["location"] == f"/portal/t/{tenant_id}"
    return client.get(r.headers["location"])


def test_G6_owner_sees_billing_tab_member_sees_none_and_gets_403(fb, client, links):
    make_tenant(fb, tenant_id="acme", catalog="agent-sessions", plan="sme")
    tenants.add_member(fb, SYSTEM, "acme", email="m@acme.test", role=Role.MEMBER)
    page = sign_in(client, links, "acme", "owner@acme.test")
    assert ">Billing</a>" in page.text
    billing = client.get("/portal/t/acme/billing")
    assert billing.status_code == 200 and "SME" in billing.text
    client.cookies.clear()
    page = sign_in(client, links, "acme", "m@acme.test")
    assert page.status_code == 200 and ">Billing</a>" not in page.text
    assert client.get("/portal/t/acme/billing").status_code == 403


def test_G6_a_member_of_one_tenant_cannot_open_another(fb, client, links):
    make_tenant(fb, tenant_id="acme")
    make_tenant(fb, tenant_id="globex")
    sign_in(client, links, "acme", "owner@acme.test")
    assert client.get("/portal/t/globex").status_code == 404
    assert client.get("/portal/t/globex/billing").status_code == 404


def test_sign_in_links_are_single_use_and_unknown_emails_learn_nothing(fb, client, links):
    make_tenant(fb, tenant_id="acme")
    form = client.get("/portal/sign-in")
    r = client.post(
        "/portal/sign-in", data={"csrf_token": _csrf(form.text), "tenant_id": "acme", "email": "nobody@acme.test"}
    )
    assert "Check your e-mail" in r.text and links == []
    sign_in(client, links, "acme", "owner@acme.test")
    client.cookies.clear()
    again = redeem(client, links[-1][1])
    assert again.status_code == 200 and "not valid any more" in again.text


def test_forms_without_the_csrf_token_are_refused(fb, client, links):
    make_tenant(fb, tenant_id="acme")
    form = client.get("/portal/sign-in")
    r = client.post("/portal/sign-in", data={"csrf_token": "forged", "tenant_id": "acme", "email": "owner@acme.test"})
    assert links == [] and "expired" in r.text
    sign_in(client, links, "acme", "owner@acme.test")
    assert client.post("/portal/sign-out", data={"csrf_token": "forged"}).status_code == 403
    assert _csrf(form.text)


def test_pages_need_a_session(client):
    r = client.get("/portal/t/acme/billing")
    assert r.status_code == 303 and r.headers["location"] == "/portal/sign-in"


def test_G2_operator_console_lists_tenants_and_advances_a_test_clock(fb, client):
    make_tenant(fb, tenant_id="acme", catalog="attendee-credits", plan="pro")
    form = client.get("/portal/operator")
    r = client.post("/portal/operator", data={"csrf_token": _csrf(form.text), "api_key": "test-operator-key"})
    assert r.status_code == 303
    page = client.get("/portal/console")
    assert "acme" in page.text and "active" in page.text
    assert "Attendee credits" in client.get("/portal/console/catalogs").text
    csrf = _csrf(page.text)
    client.post("/portal/console/clocks", data={"csrf_token": csrf, "name": "demo clock"})
    clocks_page = client.get("/portal/console/clocks").text
    clock_id = re.search(r"/portal/console/clocks/(clk_[0-9a-f]+)/advance", clocks_page).group(1)
    r = client.post(f"/portal/console/clocks/{clock_id}/advance", data={"csrf_token": csrf, "by": "36h"})
    assert r.status_code == 200 and "Advanced from" in r.text
    r = client.post(f"/portal/console/clocks/{clock_id}/advance", data={"csrf_token": csrf, "by": "soon"})
    assert "is not a duration" in r.text


def test_G6_tenant_session_cannot_use_the_operator_console(fb, client, links):
    make_tenant(fb, tenant_id="acme")
    sign_in(client, links, "acme", "owner@acme.test")
    assert client.get("/portal/console").status_code == 403
