"""Crash safety (G3, G4): SIGKILL the server in the middle of a stream of admissions
and ingestion batches, restart it, replay every request with its key; the counters
equal `farebox usage verify`'s recomputation and nothing is counted twice or lost."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx

from farebox.kernel.access import SYSTEM
from farebox.metering.services import usage

from factories import make_tenant
from support import subprocess_env

OPERATOR = {"Authorization": "Bearer test-operator-key"}
JOINS = 120
BATCHES = 30
PER_BATCH = 20


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(db_url: str, port: int) -> subprocess.Popen:
    """The API alone: the tenants were made on a frozen clock in the past, so a worker on the real clock
    would renew their periods in the middle of the stream."""
    env = subprocess_env(
        FAREBOX_DATABASE_URL=db_url,
        FAREBOX_OPERATOR_KEY="test-operator-key",
        FAREBOX_PORT=str(port),
        FAREBOX_LOG_LEVEL="warning",
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "farebox", "serve", "--no-worker"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "farebox serve did not come up"
        time.sleep(0.1)


def _requests() -> list[tuple[str, str, dict]]:
    reqs = []
    for i in range(max(JOINS, BATCHES)):
        if i < JOINS:
            reqs.append(
                (f"join-{i}", f"/v1/tenants/crash-l/occurrences/o{i % 7}/join", {"person_id": f"p{i}", "mode": "live"})
            )
        if i < BATCHES:
            events = [
                {
                    "id": f"m{i}-{j}",
                    "source": "chat",
                    "type": "conversation.message",
                    "data": {"conversation_id": f"c{i}-{j}", "from": "customer"},
                }
                for j in range(PER_BATCH)
            ]
            reqs.append((f"batch-{i}", "/v1/tenants/crash-a/usage/events", {"events": events}))
    return reqs


def test_G4_sigkill_mid_stream_then_replay_counts_everything_exactly_once(fb, db_url):
    make_tenant(fb, tenant_id="crash-l", catalog="attendee-credits", plan="pro")
    make_tenant(fb, tenant_id="crash-a", catalog="agent-sessions", plan="sme")
    port = _port()
    base = f"http://127.0.0.1:{port}"
    reqs = _requests()
    first: dict[str, dict] = {}
    server = _serve(db_url, port)
    killed = threading.Event()

    def stream():
        with httpx.Client(base_url=base, timeout=10) as client:
            for key, path, body in reqs:
                try:
                    r = client.post(path, json=body, headers={**OPERATOR, "Idempotency-Key": key})
                    first[key] = r.json()
                except httpx.TransportError:
                    if killed.is_set():
                        return

    sender = threading.Thread(target=stream)
    sender.start()
    while len(first) < len(reqs) // 3:
        time.sleep(0.01)
    os.kill(server.pid, signal.SIGKILL)
    killed.set()
    server.wait(timeout=10)
    sender.join(timeout=60)
    assert 0 < len(first) < len(reqs)

    server = _serve(db_url, port)
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            for key, path, body in reqs:
                r = client.post(path, json=body, headers={**OPERATOR, "Idempotency-Key": key})
                assert r.status_code == 200, r.text
                if key in first:
                    assert r.json() == first[key]  # the first answer, nothing counted again
            for key, path, body in reqs[:10]:  # and once more for good measure
                client.post(path, json=body, headers={**OPERATOR, "Idempotency-Key": key})
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert usage.verify(fb, SYSTEM) == []
    assert usage.usage_summary(fb, SYSTEM, "crash-l").meter("credits").used == JOINS
    assert usage.usage_summary(fb, SYSTEM, "crash-a").meter("sessions").used == BATCHES * PER_BATCH
    cli = subprocess.run(
        [sys.executable, "-m", "farebox", "usage", "verify"],
        env=subprocess_env(FAREBOX_DATABASE_URL=db_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr


def test_G4_F2_sigkill_in_the_middle_of_one_large_batch_then_resent_counts_every_event_once(fb, db_url):
    """A batch is applied in chunks, each one transaction (F2): killed half-way, the chunks committed stay, and the
    same batch sent again answers `duplicate` for them and counts the rest (issue 13, "nothing may be lost")."""
    from sqlalchemy import func, select

    from farebox.storage.tables.metering import usage_events

    make_tenant(fb, tenant_id="crash-b", catalog="attendee-credits", plan="enterprise")
    events = [
        {
            "id": f"e{i}",
            "source": "logs",
            "type": "attendee.joined",
            "data": {"occurrence_id": f"o{i % 100}", "person_id": f"p{i}"},
        }
        for i in range(10_000)
    ]
    port = _port()
    server = _serve(db_url, port)

    def stored() -> int:
        with fb.uow(readonly=True) as uow:  # a reader: on SQLite it waits for no writer
            return uow.conn.execute(
                select(func.count()).select_from(usage_events).where(usage_events.c.tenant_id == "crash-b")
            ).scalar_one()

    sender = threading.Thread(target=lambda: _post_quietly(f"http://127.0.0.1:{port}", events))
    sender.start()
    deadline = time.monotonic() + 120
    while stored() == 0:
        assert time.monotonic() < deadline, "no chunk was committed"
        time.sleep(0.005)
    os.kill(server.pid, signal.SIGKILL)
    server.wait(timeout=10)
    sender.join(timeout=60)
    cut_at = stored()
    assert 0 < cut_at < len(events), cut_at
    assert usage.verify(fb, SYSTEM) == []
    server = _serve(db_url, port)
    try:
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/tenants/crash-b/usage/events",
            json={"events": events},
            headers=OPERATOR,
            timeout=120,
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["duplicates"], body["counted"]) == (cut_at, len(events) - cut_at)
    assert usage.usage_summary(fb, SYSTEM, "crash-b").meter("credits").used == len(events)
    cli = subprocess.run(
        [sys.executable, "-m", "farebox", "usage", "verify"],
        env=subprocess_env(FAREBOX_DATABASE_URL=db_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr


def _post_quietly(base: str, events: list[dict]) -> None:
    try:
        httpx.post(f"{base}/v1/tenants/crash-b/usage/events", json={"events": events}, headers=OPERATOR, timeout=120)
    except httpx.TransportError:
        pass  # the server was killed
