"""`farebox serve` runs the worker's passes in its own process (issue 16 item 1, newuser.md section 4):
renewals, e-mail and webhook delivery happen with no `farebox worker` started; `--no-worker` turns it off."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from farebox.alerts.services import webhook_endpoints
from farebox.bootstrap import Farebox
from farebox.clocks import service as clocks
from farebox.demo import data as demo
from farebox.kernel.access import SYSTEM
from farebox.kernel.clock import FrozenClock
from farebox.settings import Settings
from farebox.storage.engine import make_engine
from farebox.storage.migrate import upgrade
from farebox.subscriptions.services import subscriptions

from factories import make_tenant
from support import START, subprocess_env

OPERATOR_KEY = "serve-worker-operator-key"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict]]]:
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Receiver.received
    server.shutdown()
    server.server_close()


def _prepare(url: str, hook: str) -> tuple[str, datetime]:
    """A tenant on a test clock, and one on the real clock whose first month ended a day ago."""
    engine = make_engine(url)
    upgrade(engine)
    settings = Settings(database_url=url, webhook_allow_private=True)  # a local receiver (F13)
    fb = Farebox(engine=engine, clock=FrozenClock(START), settings=settings)
    demo.load_catalogs(fb)
    webhook_endpoints.create_endpoint(fb, SYSTEM, url=hook, kinds=("invoice_issued",))
    clock = clocks.create(fb, SYSTEM, name="serve", start=START)
    make_tenant(fb, tenant_id="clocked")
    clocks.attach(fb, SYSTEM, clock["id"], "clocked")
    subscriptions.subscribe(fb, SYSTEM, "clocked", catalog="agent-sessions", plan="sme", cause="test")
    anchor = (datetime.now(timezone.utc) - timedelta(days=32)).replace(microsecond=0)
    fb.clock = FrozenClock(anchor)
    make_tenant(fb, tenant_id="realtime", catalog="agent-sessions", plan="sme")
    engine.dispose()
    return clock["id"], anchor


def _serve(tmp_path: Path, url: str, *extra: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = subprocess_env(FAREBOX_DATABASE_URL=url, FAREBOX_OPERATOR_KEY=OPERATOR_KEY, FAREBOX_LOG_LEVEL="warning")
    log = open(tmp_path / "serve.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "farebox", "serve", "--port", str(port), "--interval", "0.2", *extra],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        assert process.poll() is None, (tmp_path / "serve.log").read_text()
        assert time.monotonic() < deadline, "farebox serve did not come up"
        time.sleep(0.2)


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _renewals(base: str, tenant_id: str) -> list[dict]:
    invoices = httpx.get(f"{base}/v1/tenants/{tenant_id}/invoices", headers=OPERATOR, timeout=10).json()
    return [i for i in invoices if i["kind"] == "renewal"]


def _wait_for(check, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while not (found := check()):
        if time.monotonic() > deadline:
            return found
        time.sleep(0.2)
    return found


@pytest.mark.slow
def test_G2_issue16_serve_renews_and_delivers_on_its_own(tmp_path, receiver):
    hook, received = receiver
    url = f"sqlite:///{tmp_path / 'fb.db'}"
    clock_id, _ = _prepare(url, hook)
    process, base = _serve(tmp_path, url)
    try:
        # a tenant on the real clock: its month ended a day ago, nobody started a worker
        renewed = _wait_for(lambda: _renewals(base, "realtime"))
        assert renewed and renewed[0]["status"] == "paid", (tmp_path / "serve.log").read_text()
        # a tenant on a test clock advanced through the API: the renewal's alert reaches the webhook
        advanced = httpx.post(
            f"{base}/v1/test-clocks/{clock_id}/advance", json={"by": "32d"}, headers=OPERATOR, timeout=60
        )
        assert advanced.status_code == 200, advanced.text
        renewal = _renewals(base, "clocked")
        assert len(renewal) == 1
        delivered = _wait_for(
            lambda: [
                r for r in received if r["data"]["tenant_id"] == "clocked" and r["data"]["subject"] == renewal[0]["id"]
            ]
        )
        assert delivered, f"the renewal's invoice_issued webhook was not delivered: {received}"
        assert process.poll() is None
    finally:
        _stop(process)


@pytest.mark.slow
def test_issue16_serve_no_worker_leaves_the_due_work_to_dedicated_workers(tmp_path, receiver):
    hook, _ = receiver
    url = f"sqlite:///{tmp_path / 'fb.db'}"
    _prepare(url, hook)
    process, base = _serve(tmp_path, url, "--no-worker")
    try:
        time.sleep(2)
        assert _renewals(base, "realtime") == []
    finally:
        _stop(process)
