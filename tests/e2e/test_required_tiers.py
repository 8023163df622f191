"""T9: CI fails when a tier is skipped.  With FAREBOX_REQUIRE_BROWSER=1 / FAREBOX_REQUIRE_POSTGRES=1 (as `.ci/run`
sets them), a missing Chromium or PostgreSQL fails the run instead of skipping the browser or PostgreSQL-only tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pytest(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FAREBOX_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=300,
    )


def test_T9_ci_requires_every_tier() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "export FAREBOX_REQUIRE_BROWSER=1 FAREBOX_REQUIRE_POSTGRES=1" in ci
    assert ci.index("FAREBOX_REQUIRE_BROWSER=1") < ci.rindex("make test")


def test_T9_a_missing_browser_fails_when_the_browser_tier_is_required() -> None:
    target = "tests/browser/test_portal_browser.py"
    skipped = _pytest(target, FAREBOX_CHROMIUM="/nonexistent/chromium")
    assert skipped.returncode == 0 and "skipped" in skipped.stdout, skipped.stdout
    required = _pytest(target, FAREBOX_CHROMIUM="/nonexistent/chromium", FAREBOX_REQUIRE_BROWSER="1")
    assert required.returncode == 1, required.stdout
    assert "FAREBOX_REQUIRE_BROWSER=1: a missing tier fails the run" in required.stdout


def test_T9_a_missing_postgresql_fails_when_the_postgresql_tier_is_required() -> None:
    target = "tests/e2e/test_lifecycle_processes.py"
    skipped = _pytest(target)
    assert skipped.returncode == 0 and "skipped" in skipped.stdout, skipped.stdout
    required = _pytest(target, FAREBOX_REQUIRE_POSTGRES="1")
    assert required.returncode != 0
    assert "FAREBOX_REQUIRE_POSTGRES=1 but FAREBOX_TEST_POSTGRES is not set" in required.stdout + required.stderr


def test_T9_ensure_chromium_fails_when_the_browser_is_required_and_cannot_be_installed(tmp_path: Path) -> None:
    script = ROOT / "scripts" / "ensure-chromium.sh"
    env = {"PATH": str(tmp_path), "FAREBOX_CHROMIUM": "/nonexistent/chromium"}  # no apt-get on this PATH
    bash = "/bin/bash"
    assert subprocess.run([bash, str(script)], env=env, capture_output=True).returncode == 0
    required = subprocess.run([bash, str(script)], env={**env, "FAREBOX_REQUIRE_BROWSER": "1"}, capture_output=True)
    assert required.returncode == 1
