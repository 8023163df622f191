"""Issue 17 through real processes: keys managed from the CLI (F9, D6), and a revocation refused at
once by every server process (no process keeps a key it has seen), on SQLite and PostgreSQL."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx

from support import subprocess_env


def _farebox(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "farebox", *args], env=env, capture_output=True, text=True, timeout=120, check=check
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(base: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{base} did not come up"
        time.sleep(0.2)


def test_F9_D6_keys_are_issued_listed_rotated_and_revoked_from_the_cli(db_url):
    env = subprocess_env(FAREBOX_DATABASE_URL=db_url)
    first = (
        _farebox("keys", "issue", "--name", "ci", "--expires-in-days", "30", env=env).stdout.strip().splitlines()[-1]
    )
    key_id = first.split(".")[0]
    listed = _farebox("keys", "list", env=env).stdout
    assert key_id in listed and "ci" in listed and first.split(".")[1] not in listed
    second = _farebox("keys", "rotate", key_id, env=env).stdout.strip().splitlines()[-1]
    assert second.split(".")[0] != key_id
    again = _farebox("keys", "rotate", key_id, env=env, check=False)
    assert again.returncode == 1 and "api_key_inactive" in again.stderr
    assert "revoked" in _farebox("keys", "revoke", second, env=env).stdout
    missing = _farebox("keys", "revoke", "fbk_nope", env=env, check=False)
    assert missing.returncode == 1 and "not_found" in missing.stderr


def test_F9_a_revoked_key_is_refused_within_a_second_by_every_server_process(db_url):
    env = subprocess_env(FAREBOX_DATABASE_URL=db_url)
    secret = _farebox("keys", "issue", env=env).stdout.strip().splitlines()[-1]
    ports = [_free_port(), _free_port()]
    servers = [
        subprocess.Popen([sys.executable, "-m", "farebox", "serve", "--port", str(port)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for port in ports
    ]
    try:
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        for base in bases:
            _wait_up(base)
        headers = {"Authorization": f"Bearer {secret}"}
        for _ in range(3):  # each process has seen and accepted the key (a cache would now hold it)
            assert all(httpx.get(f"{base}/v1/tenants", headers=headers).status_code == 200 for base in bases)
        revoked = httpx.post(f"{bases[0]}/v1/api-keys/{secret.split('.')[0]}/revoke", headers=headers)
        assert revoked.status_code == 200
        time.sleep(1.0)
        assert [httpx.get(f"{base}/v1/tenants", headers=headers).status_code for base in bases] == [401, 401]
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)
