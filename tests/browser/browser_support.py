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
    r = httpx.request(method, base + path, headers={"Authorization": "Bearer browser-operator-key"}, timeout=10, **kwargs)
    assert r.status_code < 400, r.text
    return r.json()
