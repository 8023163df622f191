"""Browser tests: Playwright for Python driving Debian's Chromium.

A real `farebox serve` process on a free local port, on a fresh SQLite
database with the bundled catalogs; Chromium from /usr/bin/chromium (never a
browser download).  Screenshots go to test-output/browser/; with
FAREBOX_UPDATE_SCREENSHOTS=1 the ones the README shows are also copied to
docs/screenshots/.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from support import subprocess_env, tier_missing

CHROMIUM = os.environ.get("FAREBOX_CHROMIUM", "/usr/bin/chromium")
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "browser"
README_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        tier_missing(
            f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install chromium) to run the browser tests",
            require="FAREBOX_REQUIRE_BROWSER",
        )
    return CHROMIUM


@pytest.fixture
def server(tmp_path):
    """A live farebox server; yields (base_url, env, links_file)."""
    port = _free_port()
    env = subprocess_env(
        FAREBOX_DATABASE_URL=f"sqlite:///{tmp_path / 'fb.db'}",
        FAREBOX_OPERATOR_KEY="browser-operator-key",
        FAREBOX_PORT=str(port),
        FAREBOX_LOG_LEVEL="warning",
    )
    for args in (["migrate"], ["catalog", "load", "--bundled"]):
        subprocess.run([sys.executable, "-m", "farebox", *args], env=env, cwd=tmp_path, check=True, capture_output=True, timeout=120)
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "farebox", "serve"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail(f"farebox serve did not start: {(tmp_path / 'server.log').read_text()}")
        time.sleep(0.2)
    yield base, env, tmp_path / "server.log"
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium_path,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield b
        b.close()


@pytest.fixture
def shot(request):
    OUTPUT.mkdir(parents=True, exist_ok=True)

    def take(page, name: str, *, readme: str | None = None) -> Path:
        path = OUTPUT / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if readme and os.environ.get("FAREBOX_UPDATE_SCREENSHOTS") == "1":
            README_SHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, README_SHOTS / f"{readme}.png")
        return path

    return take
