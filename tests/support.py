"""Helpers shared by tests (importable from any test directory)."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)  # where the tests' clocks start


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a child process (`python -m farebox ...`) that imports
    this checkout's code, whatever is installed in the venv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAREBOX_")}
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env
