"""A separate process that admits people (used by the concurrency tests).

    python tests/metering_worker.py URL TENANT OCCURRENCE PREFIX N [--spread] [--messages] [--ingest THREADS]

`--ingest THREADS`: THREADS threads send the N joins as ingestion batches of 5 events (each its own person).

Prints one JSON line: the decisions' (admitted, counted, reason).
"""

from __future__ import annotations

import json
import sys

from farebox.bootstrap import Farebox
from farebox.clocks.system import SystemClock
from farebox.kernel.access import SYSTEM
from farebox.metering.services import admission
from farebox.settings import Settings
from farebox.storage.engine import make_engine


def main() -> None:
    url, tenant, occurrence, prefix, n = sys.argv[1:6]
    spread = "--spread" in sys.argv
    fb = Farebox(engine=make_engine(url), clock=SystemClock(), settings=Settings(database_url=url))
    if "--ingest" in sys.argv:
        threads = int(sys.argv[sys.argv.index("--ingest") + 1])
        print(json.dumps(_ingest(fb, tenant, occurrence, prefix, int(n), threads)))
        return
    out = []
    for i in range(int(n)):
        occ = f"{occurrence}-{i % 5}" if spread else occurrence
        if "--messages" in sys.argv:
            d = admission.message(fb, SYSTEM, tenant, f"{occurrence}-{i % 3}", sender="customer")
        else:
            d = admission.join(fb, SYSTEM, tenant, occ, f"{prefix}-{i}", mode="live")
        out.append([d.admitted, d.counted, d.reason])
    print(json.dumps(out))


def _ingest(fb: Farebox, tenant: str, occurrence: str, prefix: str, n: int, threads: int) -> list[list]:
    from concurrent.futures import ThreadPoolExecutor

    from farebox.metering.services import ingestion

    def send(t: int) -> list[list]:
        mine = [i for i in range(n) if i % threads == t]
        out = []
        for start in range(0, len(mine), 5):
            events = [
                {"id": f"{prefix}-{i}", "source": "race", "type": "attendee.joined",
                 "data": {"occurrence_id": f"{occurrence}-{i % 5}", "person_id": f"{prefix}-{i}"}}
                for i in mine[start:start + 5]
            ]
            report = ingestion.ingest(fb, SYSTEM, tenant, events)
            out += [[r.decision["admitted"], r.decision["counted"], r.decision["reason"]] for r in report.results]
        return out

    with ThreadPoolExecutor(threads) as pool:
        return [d for part in pool.map(send, range(threads)) for d in part]


if __name__ == "__main__":
    main()
