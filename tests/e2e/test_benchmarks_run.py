"""Every benchmark in bench/ still runs end to end, at a tiny size.

The benchmarks are not tests and their figures are never asserted; but a bench that stops at its set-up (a rule
tightened elsewhere, a function renamed) measures nothing, and nobody notices until the next measurement. This runs
each one once, small, and checks that it printed its figure beside its baseline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support import subprocess_env

BENCH = Path(__file__).resolve().parents[2] / "bench"

SMALL = {
    "admission.py": ["-n", "50"],
    "ingestion.py": ["--batches", "1", "--size", "200", "--repeat", "2", "--http"],
    "http_admissions.py": ["-n", "60", "-c", "4"],
    "billing_run.py": ["40"],
    "usage_read.py": ["--events", "2000", "--reads", "20"],
    "reprice_all.py": ["100"],
    "lifecycle_current.py": ["--tenants", "3", "--reads", "50"],
    "alerts_usage_listener.py": ["20"],
    "load_webinar.py": ["--attendees", "30", "--duration", "1", "--conversations", "4", "--concurrency", "4"],
}


def test_every_bench_is_listed_here():
    assert {p.name for p in BENCH.glob("*.py") if not p.name.startswith("_")} == set(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_bench_runs_and_prints_a_ratio_to_its_baseline(name):
    done = subprocess.run(
        [sys.executable, str(BENCH / name), *SMALL[name]],
        cwd=BENCH.parent,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ratio" in done.stdout.lower(), done.stdout[-2000:]
