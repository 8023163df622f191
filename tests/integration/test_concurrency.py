"""Hard limits under concurrency: N real processes admitting into one hard-capped
occurrence and one credit pool never count past the cap; every refusal has its reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from farebox.kernel.access import SYSTEM
from farebox.metering.services import usage

from factories import make_tenant
from metering_support import shrink
from support import subprocess_env

WORKER = Path(__file__).resolve().parents[1] / "metering_worker.py"
PROCESSES = 4
PER_PROCESS = 12


def _hammer(
    db_url: str, tenant: str, occurrence: str, *, spread: bool = False, messages: bool = False, ingest: int = 0
) -> list[list]:
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), db_url, tenant, occurrence, f"w{n}", str(PER_PROCESS)]
            + (["--spread"] if spread else [])
            + (["--messages"] if messages else [])
            + (["--ingest", str(ingest)] if ingest and n % 2 == 0 else []),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env(),
        )
        for n in range(PROCESSES)
    ]
    decisions = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        decisions += json.loads(out.strip().splitlines()[-1])
    return decisions


def test_S5_L7_processes_hammering_a_hard_capped_occurrence_stop_exactly_at_the_cap(fb, db_url):
    make_tenant(fb, tenant_id="cc", catalog="session-caps", plan="pro")
    shrink(fb, "cc", "attendees", 17, policy="hard")
    decisions = _hammer(db_url, "cc", "big")
    counted = [d for d in decisions if d[1]]
    refused = [d for d in decisions if not d[0]]
    assert len(counted) == 17
    assert len(refused) == PROCESSES * PER_PROCESS - 17
    assert {d[2] for d in refused} == {"attendee_cap_reached"}
    assert usage.verify(fb, SYSTEM) == []


def test_L3_L7_processes_hammering_one_credit_pool_never_pass_it(fb, db_url):
    make_tenant(fb, tenant_id="cp", catalog="attendee-credits", plan="pro")
    shrink(fb, "cp", "credits", 23)
    decisions = _hammer(db_url, "cp", "occ", spread=True)
    assert sum(1 for d in decisions if d[1]) == 23
    assert {d[2] for d in decisions if not d[0]} == {"credits_exhausted"}
    assert usage.usage_summary(fb, SYSTEM, "cp").meter("credits").used == 23
    assert usage.verify(fb, SYSTEM) == []


def test_L3_L7_F2_processes_ingesting_batches_in_threads_beside_live_joins_stop_exactly_at_a_hard_pool(fb, db_url):
    """Issue 13: N processes x M threads, half sending ingestion batches (each pool taken once per chunk, last),
    half live joins, racing one hard credit pool: it ends exactly at the cap, every refusal reasoned."""
    make_tenant(fb, tenant_id="ci", catalog="attendee-credits", plan="pro")
    shrink(fb, "ci", "credits", 29)
    decisions = _hammer(db_url, "ci", "occ", spread=True, ingest=3)
    assert len(decisions) == PROCESSES * PER_PROCESS
    assert sum(1 for d in decisions if d[1]) == 29
    assert {d[2] for d in decisions if not d[0]} == {"credits_exhausted"}
    assert usage.usage_summary(fb, SYSTEM, "ci").meter("credits").used == 29
    assert usage.verify(fb, SYSTEM) == []


def test_A1_G4_processes_sending_first_messages_of_the_same_conversations_open_one_window_each(fb, db_url):
    make_tenant(fb, tenant_id="cm", catalog="agent-sessions", plan="sme")
    decisions = _hammer(db_url, "cm", "conv", messages=True)
    assert all(d[0] for d in decisions)
    assert sum(1 for d in decisions if d[1]) == 3  # three conversations, one 24 h window each
    assert usage.usage_summary(fb, SYSTEM, "cm").meter("sessions").used == 3
    assert usage.verify(fb, SYSTEM) == []
