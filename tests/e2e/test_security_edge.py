"""Issue 17 at the edge: links from FAREBOX_PUBLIC_URL (F4), magic-link hygiene (F10, 14.12),
bounded bodies (F8), hardening headers (F12)."""

from __future__ import annotations

import dataclasses
import re
import socket
import time
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from farebox.bootstrap import print_sign_in_link, sign_in_sender
from farebox.entrypoints.api import middleware
from farebox.entrypoints.api.app import create_app
from farebox.entrypoints.portal.web import SESSION_COOKIE
from farebox.settings import Settings
from farebox.storage.tables.portal import portal_link_requests, portal_sign_in_links
from farebox.tenants.services import sign_in as portal_auth

from factories import make_tenant

OPERATOR = {"Authorization": "Bearer test-operator-key"}


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture
def links(fb):
    sent: list[tuple[str, str]] = []
    fb.send_sign_in_link = lambda email, link: sent.append((email, link))
    return sent


def _ask(client, tenant_id="acme", email="owner@acme.test", headers=None):
    form = client.get("/portal/sign-in")
    return client.post(
        "/portal/sign-in",
        data={"csrf_token": _csrf(form.text), "tenant_id": tenant_id, "email": email},
        headers=headers or {},
    )


def test_F4_the_link_comes_from_the_public_url_not_the_host_header(fb, links):
    make_tenant(fb, tenant_id="acme")
    fb.settings = dataclasses.replace(fb.settings, public_url="https://billing.example.com")
    with TestClient(create_app(fb), base_url="https://testserver", follow_redirects=False) as client:
        asked = _ask(client, headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"})
        assert asked.status_code == 200 and "Check your e-mail" in asked.text
        assert links[-1][1].startswith("https://billing.example.com/portal/sign-in/")
        path = links[-1][1].removeprefix("https://billing.example.com")
        confirm = client.get(path)
        signed_in = client.post(path, data={"csrf_token": _csrf(confirm.text)})
        assert signed_in.status_code == 303
        assert "secure" in signed_in.headers["set-cookie"].lower()  # https public URL: Secure, whatever the hop said


def test_F4_without_a_public_url_the_link_uses_the_servers_own_address(fb, links):
    make_tenant(fb, tenant_id="acme")
    with TestClient(create_app(fb), follow_redirects=False) as client:
        _ask(client, headers={"Host": "evil.example"})
    assert "evil.example" not in links[-1][1] and links[-1][1].startswith("http://testserver/portal/sign-in/")


def test_F10_opening_the_link_uses_nothing_up_the_button_does(fb, links):
    make_tenant(fb, tenant_id="acme")
    with TestClient(create_app(fb), follow_redirects=False) as client:
        _ask(client)
        path = links[-1][1].removeprefix("http://testserver")
        for _ in range(3):  # a mail scanner's prefetches
            prefetch = client.get(path)
            assert prefetch.status_code == 200 and SESSION_COOKIE not in prefetch.cookies
            assert prefetch.headers["referrer-policy"] == "no-referrer"
        redeemed = client.post(path, data={"csrf_token": _csrf(prefetch.text)})
        assert redeemed.status_code == 303 and redeemed.headers["location"] == "/portal/t/acme"
        assert (
            client.post(path, data={"csrf_token": _csrf(prefetch.text)}).status_code == 200
        )  # single use: the form again


def test_F10_link_requests_are_rate_limited_per_email_and_per_client(fb, links):
    make_tenant(fb, tenant_id="acme")
    with TestClient(create_app(fb), follow_redirects=False) as client:
        answers = [_ask(client).status_code for _ in range(portal_auth.LINKS_PER_EMAIL + 2)]
        assert answers == [200] * portal_auth.LINKS_PER_EMAIL + [429, 429] and len(links) == portal_auth.LINKS_PER_EMAIL
        refused = _ask(client, email="nobody@acme.test")  # a non-member is limited the same way (no membership oracle)
        assert refused.status_code == 200
        for i in range(portal_auth.LINKS_PER_CLIENT):
            _ask(client, email=f"x{i}@acme.test")
        assert _ask(client, email="someone-else@acme.test").status_code == 429
    fb.clock.advance(portal_auth.RATE_WINDOW)
    with TestClient(create_app(fb), follow_redirects=False) as client:
        assert _ask(client).status_code == 200


def test_F10_members_and_non_members_do_the_same_work(fb, links):
    """Same statements for both (a link row is written for a non-member too, never redeemable); the link is sent after
    the answer. The review measured 5.15 ms vs 3.09 ms because only a member cost an insert and a commit."""
    from sqlalchemy import event

    make_tenant(fb, tenant_id="acme")
    statements: list[str] = []
    listener = lambda conn, cursor, statement, *a: statements.append(statement.split()[0])  # noqa: E731
    event.listen(fb.engine, "before_cursor_execute", listener)
    try:
        member = portal_auth.request_link(
            fb, tenant_id="acme", email="owner@acme.test", base_url="http://x", client="c1"
        )
        member_statements, statements[:] = list(statements), []
        stranger = portal_auth.request_link(
            fb, tenant_id="acme", email="nobody@acme.test", base_url="http://x", client="c2"
        )
    finally:
        event.remove(fb.engine, "before_cursor_execute", listener)
    assert member is not None and stranger is None
    assert member_statements == statements
    with fb.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(portal_link_requests)).scalar_one() == 2
        assert conn.execute(select(func.count()).select_from(portal_sign_in_links)).scalar_one() == 2
    assert portal_auth.redeem_link(fb, "not-the-token") is None


@contextmanager
def served(app):
    """The app behind a real uvicorn server on a free port (so background work runs after the answer is sent)."""
    import threading

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_F10_median_answer_times_of_members_and_non_members_are_close(fb, links):
    """The review measured 5.15 ms for a member vs 3.09 ms for a non-member; with a slow mail server it would be
    seconds."""
    import httpx

    make_tenant(fb, tenant_id="acme")
    fb.send_sign_in_link = lambda email, link: time.sleep(0.2)  # a slow mail server: must not show in the answer
    with served(create_app(fb)) as base, httpx.Client(base_url=base, timeout=30) as client:  # loaded CI stalls
        def timed(email: str, n: int) -> float:
            times = []
            for _ in range(n):
                form = client.get("/portal/sign-in")
                started = time.perf_counter()
                cookie = {
                    "Cookie": f"farebox_csrf={form.cookies['farebox_csrf']}"
                }  # a Secure cookie: httpx keeps it for https
                answer = client.post(
                    "/portal/sign-in",
                    data={"csrf_token": _csrf(form.text), "tenant_id": "acme", "email": email},
                    headers=cookie,
                )
                times.append(time.perf_counter() - started)
                assert answer.status_code == 200 and "Check your e-mail" in answer.text
            return sorted(times)[n // 2]

        member, stranger = timed("owner@acme.test", 3), timed("nobody@acme.test", 3)
    assert member < stranger + 0.1, (member, stranger)  # the 200 ms send happens after the answer


def test_14_12_with_smtp_configured_links_go_by_mail_and_never_to_the_log(capsys):
    from aiosmtpd.controller import Controller

    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope)
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        send = sign_in_sender(Settings(smtp_url=f"smtp://127.0.0.1:{port}"))
        send("owner@acme.test", "https://billing.example.com/portal/sign-in/secret-token")
    finally:
        controller.stop()
    assert received and received[0].rcpt_tos == ["owner@acme.test"]
    assert b"https://billing.example.com/portal/sign-in/secret-token" in received[0].content
    assert "secret-token" not in capsys.readouterr().err
    assert sign_in_sender(Settings()) is print_sign_in_link  # the embedded default prints


def test_F8_an_oversized_body_is_refused_before_authentication_and_before_reading(fb):
    with TestClient(create_app(fb)) as client:
        big = client.post("/v1/tenants/acme/occurrences/o/join", content=b"x" * (middleware.JSON_BODY_BYTES + 1),
                          headers={"Content-Type": "application/json"})
        assert big.status_code == 413 and big.json()["error"]["code"] == "body_too_large"
        form = client.post("/portal/sign-in", content=b"a=" + b"x" * middleware.FORM_BODY_BYTES,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert form.status_code == 413


def test_F8_a_streamed_body_without_length_is_cut_at_the_limit(fb):
    def chunks():
        for _ in range(40):
            yield b"x" * (64 * 1024)

    with TestClient(create_app(fb)) as client:
        r = client.post(
            "/v1/tenants/acme/occurrences/o/join",
            content=chunks(),
            headers={**OPERATOR, "Content-Type": "application/json"},
        )
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


def test_F8_a_10000_event_batch_still_fits(fb):
    make_tenant(fb, tenant_id="acme", catalog="session-caps", plan="pro")
    events = [
        {
            "id": f"e{i}",
            "source": "s",
            "type": "attendee.registered",
            "data": {"occurrence_id": f"o{i // 100}", "person_id": f"p{i}", "note": "x" * 900},
        }
        for i in range(10_000)
    ]
    with TestClient(create_app(fb)) as client:
        r = client.post("/v1/tenants/acme/usage/events", json={"events": events}, headers=OPERATOR)
    assert r.status_code == 200, r.text[:300]


def test_F8_over_http_a_300_mb_declared_body_is_answered_413_without_being_read(tmp_path):
    """Against a real server: the answer comes before the body is sent."""
    import subprocess
    import sys

    from support import subprocess_env

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = subprocess_env(FAREBOX_DATABASE_URL=f"sqlite:///{tmp_path / 'f.db'}", FAREBOX_PORT=str(port))
    subprocess.run([sys.executable, "-m", "farebox", "migrate"], env=env, check=True, capture_output=True, timeout=60)
    server = subprocess.Popen(
        [sys.executable, "-m", "farebox", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        n = 300_000_000
        conn.sendall(
            b"POST /v1/tenants/acme/occurrences/o/join HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % n
        )
        answer = conn.recv(200)
        conn.close()
        assert answer.startswith(b"HTTP/1.1 413"), answer
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_F12_hardening_headers_on_portal_and_api_and_hsts_over_https(fb):
    with TestClient(create_app(fb)) as client:
        for path in ("/portal/sign-in", "/v1/tenants", "/healthz"):
            r = client.get(path)
            assert r.headers["x-content-type-options"] == "nosniff", path
            assert r.headers["x-frame-options"] == "DENY", path
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
            assert r.headers["referrer-policy"], path
            assert "strict-transport-security" not in r.headers
    with TestClient(create_app(fb), base_url="https://testserver") as client:
        assert client.get("/healthz").headers["strict-transport-security"].startswith("max-age=")


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/",
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://10.0.0.5/hook",
    "http://192.168.1.1/hook",
    "http://0.0.0.0/hook",
    "http://2130706433/hook",  # 127.0.0.1 written as one number
])
def test_F13_webhook_urls_on_internal_addresses_are_refused_unless_the_operator_opts_in(fb, url):
    with TestClient(create_app(fb)) as client:
        refused = client.post("/v1/webhook-endpoints", json={"url": url}, headers=OPERATOR)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "webhook_address_refused", refused.text
        assert "FAREBOX_WEBHOOK_ALLOW_PRIVATE" in refused.json()["error"]["message"]
        assert client.get("/v1/webhook-endpoints", headers=OPERATOR).json() == []
    fb.settings = dataclasses.replace(fb.settings, webhook_allow_private=True)
    with TestClient(create_app(fb)) as client:
        assert client.post("/v1/webhook-endpoints", json={"url": url}, headers=OPERATOR).status_code == 201


def test_F13_public_webhook_urls_are_accepted(fb):
    with TestClient(create_app(fb)) as client:
        for url in ("https://93.184.215.14/hook", "https://hooks.example.com/farebox"):
            assert client.post("/v1/webhook-endpoints", json={"url": url}, headers=OPERATOR).status_code == 201, url


def test_F13_ipv6_literals_are_refused_by_the_schema(fb):
    with TestClient(create_app(fb)) as client:
        for url in ("http://[::1]/hook", "http://[::ffff:169.254.169.254]/hook"):
            assert client.post("/v1/webhook-endpoints", json={"url": url}, headers=OPERATOR).status_code == 422, url
