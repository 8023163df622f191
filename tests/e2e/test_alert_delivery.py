"""Delivery of alerts for real (G12): e-mail to an aiosmtpd server, signed webhooks to a local HTTP
server verified with an independent implementation of Standard Webhooks, retries, replay, rotation,
and a worker killed with SIGKILL between writing and delivering that loses nothing."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient

from farebox.alerts.services import delivery, webhook_endpoints
from farebox.bootstrap import Farebox
from farebox.entrypoints.api.app import create_app
from farebox.events.signals import Signal, publish
from farebox.kernel.access import SYSTEM, Role
from farebox.settings import Settings
from farebox.subscriptions.services import subscriptions
from farebox.tenants.db import tenants as tenants_repo
from farebox.tenants.services import tenants

from factories import clear_outbox, make_tenant, usage_recorded
from support import subprocess_env

OPERATOR = {"Authorization": "Bearer test-operator-key"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_session_alerts(fb, *, before=479, after=480, tenant_id="acme"):
    sub = subscriptions.current(fb, SYSTEM, tenant_id)
    with fb.uow() as uow:
        data = usage_recorded(sub, before, after, included=600)
        publish(uow, Signal("usage.recorded", tenant_id, fb.clock.now(), subject=sub.id, data=data))
        uow.commit()


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks, written from the scheme's text (not with the library farebox signs with)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(part == f"v1,{expected}" for part in headers["webhook-signature"].split(" "))


class Receiver:
    """A local webhook receiver: answers from `statuses` in turn (then 200); can hang on the first request."""

    def __init__(self, statuses=(), hang_first=False):
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.statuses = list(statuses)
        self.hang_first = hang_first
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                first = not outer.received
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                if first and outer.hang_first:
                    outer.release.wait(30)
                    return
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(fb):
    """Receivers on loopback, so the operator's opt-in for private webhook addresses is on (F13)."""
    fb.settings = dataclasses.replace(fb.settings, webhook_allow_private=True)
    made: list[Receiver] = []

    def make(**kw):
        made.append(Receiver(**kw))
        return made[-1]

    yield make
    for r in made:
        r.close()


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


def test_G12_email_over_real_smtp_to_owners_admins_and_billing_recipient(fb):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        smtp_fb = Farebox(
            engine=fb.engine,
            clock=fb.clock,
            settings=Settings(database_url="", smtp_url=f"smtp://127.0.0.1:{controller.port}"),
        )
        make_tenant(smtp_fb, tenant_id="acme", catalog="agent-sessions", plan="sme")
        clear_outbox(smtp_fb, "acme")
        tenants.add_member(smtp_fb, SYSTEM, "acme", email="admin@acme.test", role=Role.ADMIN)
        with smtp_fb.uow() as uow:
            tenants_repo.update_tenant(uow.conn, "acme", billing_email="finance@acme.test")
            uow.commit()
        raise_session_alerts(smtp_fb)
        report = delivery.deliver_pending(smtp_fb)
        assert len(report.delivered) == 3
        assert sorted(r[0] for r, _ in inbox.messages) == ["admin@acme.test", "finance@acme.test", "owner@acme.test"]
        _, mail = inbox.messages[0]
        assert mail["Subject"] == "Session limit almost reached"
        text = mail.get_body(preferencelist=("plain",)).get_content()
        html = mail.get_body(preferencelist=("html",)).get_content()
        assert "Your agents have used 480 of your monthly limit of 600 sessions (80%)." in text
        assert "<h1" in html and "Session limit almost reached" in html
        assert delivery.deliver_pending(smtp_fb).count == 0  # sent once
    finally:
        controller.stop()


def test_G12_without_smtp_mail_waits_in_the_outbox(fb):
    make_tenant(fb, tenant_id="acme", catalog="agent-sessions", plan="sme")
    clear_outbox(fb, "acme")
    raise_session_alerts(fb)
    assert delivery.deliver_pending(fb).count == 0
    assert [m.status for m in delivery.email_outbox(fb, SYSTEM, "acme")] == ["pending"]


def test_G12_signed_webhook_retried_after_a_500_with_the_same_webhook_id(fb, receiver):
    hook = receiver(statuses=[500])
    endpoint = webhook_endpoints.create_endpoint(fb, SYSTEM, url=hook.url)
    make_tenant(fb, tenant_id="acme", catalog="agent-sessions", plan="sme")
    clear_outbox(fb, "acme")
    raise_session_alerts(fb)
    first = delivery.deliver_pending(fb)
    assert first.retrying and not first.delivered
    assert delivery.deliver_pending(fb).count == 0  # backing off
    fb.clock.advance(timedelta(seconds=31))
    second = delivery.deliver_pending(fb)
    assert second.delivered == first.retrying
    assert len(hook.received) == 2
    (h1, b1), (h2, b2) = hook.received
    assert h1["webhook-id"] == h2["webhook-id"] == first.retrying[0] and b1 == b2
    assert all(verify(endpoint.secret, h, b) for h, b in hook.received)
    payload = json.loads(b2)
    assert payload["type"] == "alert.session_limit" and payload["data"]["title"] == "Session limit almost reached"
    log = delivery.get_delivery(fb, SYSTEM, first.retrying[0]).log
    assert [(a.ok, a.status_code) for a in log] == [(False, 500), (True, 200)]


def test_G12_replay_sends_the_same_message_again(fb, receiver):
    hook = receiver()
    webhook_endpoints.create_endpoint(fb, SYSTEM, url=hook.url)
    make_tenant(fb, tenant_id="acme", catalog="agent-sessions", plan="sme")
    clear_outbox(fb, "acme")
    raise_session_alerts(fb)
    (delivered,) = delivery.deliver_pending(fb).delivered
    delivery.replay(fb, SYSTEM, delivered)
    assert delivery.deliver_pending(fb).delivered == [delivered]
    assert [h["webhook-id"] for h, _ in hook.received] == [delivered, delivered]
    assert hook.received[0][1] == hook.received[1][1]


def test_G12_rotated_secret_old_one_still_verifies_during_the_grace_window(fb, receiver):
    hook = receiver()
    old = webhook_endpoints.create_endpoint(fb, SYSTEM, url=hook.url)
    new = webhook_endpoints.rotate_secret(fb, SYSTEM, old.id, grace=timedelta(hours=1))
    make_tenant(fb, tenant_id="acme", catalog="agent-sessions", plan="sme")
    clear_outbox(fb, "acme")
    raise_session_alerts(fb)
    delivery.deliver_pending(fb)
    headers, body = hook.received[-1]
    assert verify(old.secret, headers, body) and verify(new.secret, headers, body)
    fb.clock.advance(timedelta(hours=2))
    raise_session_alerts(fb, before=599, after=600)
    delivery.deliver_pending(fb)
    headers, body = hook.received[-1]
    assert verify(new.secret, headers, body) and not verify(old.secret, headers, body)


def test_G12_api_lists_notifications_deliveries_and_manages_endpoints(fb, receiver):
    hook = receiver()
    client = TestClient(create_app(fb))
    made = client.post("/v1/webhook-endpoints", json={"url": hook.url}, headers=OPERATOR)
    assert made.status_code == 201 and made.json()["secret"].startswith("whsec_")
    assert client.get("/v1/webhook-endpoints", headers=OPERATOR).json()[0]["secret"] is None
    rotated = client.post(
        f"/v1/webhook-endpoints/{made.json()['id']}/rotate-secret", json={"grace_hours": 2}, headers=OPERATOR
    ).json()
    assert rotated["secret"] != made.json()["secret"] and rotated["previous_secret_expires_at"]
    make_tenant(fb, tenant_id="acme", catalog="agent-sessions", plan="sme")
    clear_outbox(fb, "acme")
    owner = tenants.issue_api_key(fb, SYSTEM, tenant_id="acme", role=Role.OWNER).secret
    member = tenants.issue_api_key(fb, SYSTEM, tenant_id="acme", role=Role.MEMBER).secret
    raise_session_alerts(fb)
    as_owner = {"Authorization": f"Bearer {owner}"}
    listed = client.get("/v1/tenants/acme/notifications", headers=as_owner).json()
    assert listed["unread"] == 1 and listed["items"][0]["title"] == "Session limit almost reached"
    assert (
        client.get("/v1/tenants/acme/notifications", headers={"Authorization": f"Bearer {member}"}).status_code == 403
    )
    read = client.post(f"/v1/tenants/acme/notifications/{listed['items'][0]['id']}/read", headers=as_owner)
    assert read.status_code == 200 and read.json()["read_at"]
    assert client.get("/v1/tenants/acme/notifications?unread=true", headers=as_owner).json() == {
        "unread": 0,
        "items": [],
    }
    assert client.get("/v1/tenants/acme/email-outbox", headers=as_owner).json()[0]["to"] == "owner@acme.test"
    delivery.deliver_pending(fb)
    deliveries = client.get("/v1/deliveries?channel=webhook", headers=OPERATOR).json()
    assert [d["status"] for d in deliveries] == ["delivered"]
    one = client.get(f"/v1/deliveries/{deliveries[0]['id']}", headers=OPERATOR).json()
    assert one["log"][0]["status_code"] == 200
    assert client.post(f"/v1/deliveries/{one['id']}/replay", headers=OPERATOR).json()["status"] == "pending"
    assert (
        client.put(
            "/v1/tenants/acme/notification-channels", json={"channel": "email", "enabled": False}, headers=as_owner
        ).json()["email"]
        is False
    )
    assert (
        client.put(
            "/v1/notification-channels", json={"channel": "webhook", "enabled": False}, headers=as_owner
        ).status_code
        == 403
    )
    assert client.delete(f"/v1/webhook-endpoints/{made.json()['id']}", headers=OPERATOR).status_code == 204


def test_G12_worker_killed_between_writing_and_delivering_loses_nothing(fb, db_url, receiver):
    """At-least-once: SIGKILL while a webhook is in flight; a restarted worker delivers every alert."""
    hook = receiver(hang_first=True)
    # only the session-limit alerts: the real-clock worker also renews these tenants' periods since
    # the test's frozen date, and their invoice alerts are not this test's subject
    webhook_endpoints.create_endpoint(fb, SYSTEM, url=hook.url, kinds=("session_limit",))
    for tenant_id in ("acme", "globex", "initech"):  # mail is not configured: only webhooks go out
        make_tenant(fb, tenant_id=tenant_id, catalog="agent-sessions", plan="sme")
        clear_outbox(fb, tenant_id)
        raise_session_alerts(fb, tenant_id=tenant_id)
    expected = {d.id for d in delivery.list_deliveries(fb, SYSTEM, channel="webhook")}
    assert len(expected) == 3
    env = subprocess_env(FAREBOX_DATABASE_URL=db_url)
    args = [sys.executable, "-m", "farebox", "worker", "--interval", "0.2", "--lease", "1"]
    worker = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not hook.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hook.received, "the worker never sent"
        worker.send_signal(signal.SIGKILL)  # mid-delivery: claimed, sent, not recorded
        worker.wait(10)
        hook.release.set()
        assert {d.status for d in delivery.list_deliveries(fb, SYSTEM, channel="webhook")} == {
            "pending"
        }  # nothing recorded, nothing lost
        worker = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if {d.status for d in delivery.list_deliveries(fb, SYSTEM, channel="webhook")} == {"delivered"}:
                break
            time.sleep(0.1)
    finally:
        worker.kill()
        worker.wait(10)
    assert {d.id: d.status for d in delivery.list_deliveries(fb, SYSTEM, channel="webhook")} == {
        i: "delivered" for i in expected
    }
    assert {h["webhook-id"] for h, _ in hook.received} == expected
