"""Helpers shared by tests (importable from any test directory)."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import NoReturn

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)  # where the tests' clocks start


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a child process (`python -m farebox ...`) that imports
    this checkout's code, whatever is installed in the venv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAREBOX_")}
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def billing_key(fb, tenant_id: str, invoice_id: str) -> str:
    """An invoice's billing key (subscription, period, kind): what its payment keys derive from."""
    from farebox.invoicing.db import invoices as invoices_repo

    with fb.uow(readonly=True) as uow:
        row = invoices_repo.get(uow.conn, tenant_id, invoice_id)
    assert row is not None
    return str(row["billing_key"])


def tier_missing(reason: str, *, require: str) -> NoReturn:
    """Skip a test whose tier (a browser, PostgreSQL) is missing, or fail it when the run requires
    the tier (`FAREBOX_REQUIRE_BROWSER=1`, `FAREBOX_REQUIRE_POSTGRES=1`, as CI sets them: T9)."""
    if os.environ.get(require) == "1":
        pytest.fail(f"{reason} ({require}=1: a missing tier fails the run)", pytrace=False)
    pytest.skip(reason)
