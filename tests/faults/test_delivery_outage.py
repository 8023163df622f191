"""Fault tests (issue 9, G12): the SMTP server or the webhook endpoint is down for an hour of
test-clock time.  Deliveries are retried with exponential back-off, catch up when the receiver
comes back, and every message arrives exactly once: none lost, none duplicated."""

from __future__ import annotations

import dataclasses
import socket
import threading
from collections.abc import Callable
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from farebox.alerts.services import delivery, webhook_endpoints
from farebox.bootstrap import Farebox
from farebox.events.signals import Signal, publish
from farebox.kernel.access import SYSTEM
from farebox.settings import Settings
from farebox.subscriptions.services import subscriptions

from factories import clear_outbox, make_tenant, usage_recorded

TENANTS = ("acme", "globex", "initech")
STEP = timedelta(seconds=30)  # how often the test's worker passes run, in clock time
LONG_STEP = timedelta(minutes=5)  # for outages of days: waits are then hours long


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebhookReceiver:
    """An HTTP receiver on a fixed port, started only when the outage ends."""

    def __init__(self, port: int) -> None:
        self.port, self.ids, self.server = port, [], None

    def start(self) -> None:
        ids = self.ids

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers["content-length"]))
                ids.append(self.headers["webhook-id"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class SmtpReceiver:
    """aiosmtpd on a fixed port, started only when the outage ends; ids are the Message-IDs."""

    def __init__(self, port: int) -> None:
        self.port, self.ids, self.controller = port, [], None

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        for line in envelope.content.decode().splitlines():
            if line.lower().startswith("message-id:"):
                self.ids.append(line.split(":", 1)[1].strip().strip("<>").removesuffix("@farebox"))
        return "250 OK"

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()


def _raise_alerts(fb: Farebox) -> None:
    """Two session-limit alerts (80 % and 100 % of 600) for each tenant."""
    for tenant_id in TENANTS:
        sub = subscriptions.current(fb, SYSTEM, tenant_id)
        for before, after in ((479, 480), (599, 600)):
            with fb.uow() as uow:
                data = usage_recorded(sub, before, after, included=600)
                publish(uow, Signal("usage.recorded", tenant_id, fb.clock.now(), subject=sub.id, data=data))
                uow.commit()


def _setup(fb: Farebox, channel: str) -> tuple[Farebox, WebhookReceiver | SmtpReceiver]:
    port = _free_port()  # nothing listens there: the receiver is down
    if channel == "webhook":
        fb.settings = dataclasses.replace(
            fb.settings, webhook_allow_private=True
        )  # a receiver on loopback (F13 opt-in)
        webhook_endpoints.create_endpoint(fb, SYSTEM, url=f"http://127.0.0.1:{port}/hooks", kinds=("session_limit",))
        box, receiver = fb, WebhookReceiver(port)
    else:
        box = Farebox(
            engine=fb.engine, clock=fb.clock, settings=Settings(database_url="", smtp_url=f"smtp://127.0.0.1:{port}")
        )
        receiver = SmtpReceiver(port)
    for tenant_id in TENANTS:
        make_tenant(box, tenant_id=tenant_id, catalog="agent-sessions", plan="sme")
        clear_outbox(box, tenant_id)
    _raise_alerts(box)
    return box, receiver


def _run_worker(fb: Farebox, until: Callable[[], bool], steps: int, step: timedelta = STEP) -> int:
    """Delivery passes every `step` of clock time, as `farebox worker` would; the steps taken."""
    for taken in range(steps):
        if until():
            return taken
        delivery.deliver_pending(fb)
        fb.clock.advance(step)
    return steps


def _deliveries(fb: Farebox, channel: str) -> list[delivery.Delivery]:
    return delivery.list_deliveries(fb, SYSTEM, channel=channel)


@pytest.mark.parametrize("channel", ["webhook", "email"])
def test_G12_receiver_down_for_an_hour_deliveries_back_off_and_catch_up_exactly_once(fb, channel):
    box, receiver = _setup(fb, channel)
    expected = {d.id for d in _deliveries(box, channel)}
    assert len(expected) == 2 * len(TENANTS)
    try:
        _run_worker(box, lambda: False, steps=int(timedelta(hours=1) / STEP))  # an hour down
        down = _deliveries(box, channel)
        assert {d.status for d in down} == {"pending"}  # none given up, none delivered
        assert not receiver.ids
        receiver.start()  # back after an hour
        taken = _run_worker(box, lambda: {d.status for d in _deliveries(box, channel)} == {"delivered"}, steps=60)
        assert taken < 60, [(d.status, d.attempts, d.last_error) for d in _deliveries(box, channel)]
        # one more pass changes nothing: every message arrived once
        assert delivery.deliver_pending(box).count == 0
    finally:
        receiver.stop()
    assert sorted(receiver.ids) == sorted(expected)  # none lost, none duplicated
    for d in _deliveries(box, channel):
        log = delivery.get_delivery(box, SYSTEM, d.id).log
        assert [a.ok for a in log] == [False] * (len(log) - 1) + [True]
        gaps = [later.at - earlier.at for earlier, later in zip(log, log[1:], strict=False)]
        assert gaps == [delivery.backoff(n) for n in range(1, len(log))]  # 30 s, 1 min, 2 min … exponential


def test_G12_receiver_down_longer_than_the_retries_fails_visibly_and_a_replay_delivers_once(fb):
    """Past MAX_ATTEMPTS (about 38½ hours of back-off) a delivery is `failed`, listed for the
    operator, and `replay` sends it once more with the same webhook-id: still nothing lost."""
    box, receiver = _setup(fb, "webhook")
    assert timedelta(hours=38) < delivery.retry_span() < timedelta(hours=39)
    try:
        down = delivery.retry_span() + timedelta(hours=1)
        _run_worker(box, lambda: False, steps=int(down / LONG_STEP), step=LONG_STEP)
        failed = _deliveries(box, "webhook")
        assert {(d.status, d.attempts) for d in failed} == {("failed", delivery.MAX_ATTEMPTS)}
        assert {d.id for d in delivery.list_deliveries(box, SYSTEM, status="failed")} == {d.id for d in failed}
        receiver.start()
        for d in failed:
            delivery.replay(box, SYSTEM, d.id)
        delivery.deliver_pending(box)
        assert delivery.deliver_pending(box).count == 0
    finally:
        receiver.stop()
    assert sorted(receiver.ids) == sorted(d.id for d in failed)
    assert {d.status for d in _deliveries(box, "webhook")} == {"delivered"}
