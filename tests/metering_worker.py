"""A separate process that admits people (used by the concurrency tests).

    python tests/metering_worker.py URL TENANT OCCURRENCE PREFIX N [--spread] [--messages]

Prints one JSON line: the decisions' (admitted, counted, reason).
"""

from __future__ import annotations

import json
import sys

from farebox.adapters.clock import SystemClock
from farebox.adapters.db.engine import make_engine
from farebox.bootstrap import Farebox
from farebox.domain.access import SYSTEM
from farebox.services import admission
from farebox.settings import Settings


def main() -> None:
    url, tenant, occurrence, prefix, n = sys.argv[1:6]
    spread = "--spread" in sys.argv
    fb = Farebox(engine=make_engine(url), clock=SystemClock(), settings=Settings(database_url=url))
    out = []
    for i in range(int(n)):
        occ = f"{occurrence}-{i % 5}" if spread else occurrence
        if "--messages" in sys.argv:
            d = admission.message(fb, SYSTEM, tenant, f"{occurrence}-{i % 3}", sender="customer")
        else:
            d = admission.join(fb, SYSTEM, tenant, occ, f"{prefix}-{i}", mode="live")
        out.append([d.admitted, d.counted, d.reason])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
