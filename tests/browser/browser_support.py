"""Helpers for browser tests."""

from __future__ import annotations

import time
from pathlib import Path

import httpx


def sign_in_link(log: Path, email: str) -> str:
    """The magic link the server printed to its console for `email`."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in reversed(log.read_text().splitlines()):
            if f"sign-in link for {email}:" in line:
                return line.rsplit(" ", 1)[1]
        time.sleep(0.1)
    raise AssertionError(f"no sign-in link for {email} in the server log")


def api(base: str, method: str, path: str, **kwargs):
    r = httpx.request(
        method, base + path, headers={"Authorization": "Bearer browser-operator-key"}, timeout=10, **kwargs
    )
    assert r.status_code < 400, r.text
    return r.json()


RECORD = """
import sys
from farebox.bootstrap import bootstrap
from farebox.kernel.access import SYSTEM
from farebox.metering.services import admission
fb = bootstrap()
tenant, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(count):
    admission.message(fb, SYSTEM, tenant, f"{prefix}-{i}", sender="customer")
"""


def record_conversations(env: dict, tenant_id: str, prefix: str, count: int) -> None:
    """`count` new customer conversations (one billable session each, A1), as the product would report them."""
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, "-c", RECORD, tenant_id, prefix, str(count)],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
