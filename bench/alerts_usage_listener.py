"""Cost of the alerts listener on the hot path: `usage.recorded` published per admission.

Baseline in the same run: the same units of work publishing a signal kind no
one listens to.  Prints both rates and their ratio (SQLite, a temp file).

    .venv/bin/python bench/alerts_usage_listener.py [N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from farebox.bootstrap import Farebox
from farebox.clocks.system import SystemClock
from farebox.demo import data as demo
from farebox.events.signals import Signal, publish
from farebox.kernel.access import SYSTEM
from farebox.payments import service as payments
from farebox.payments.providers.sandbox import SUCCEEDS as GOOD_CARD
from farebox.settings import Settings
from farebox.storage.engine import make_engine
from farebox.storage.migrate import upgrade
from farebox.subscriptions.services import subscriptions
from farebox.tenants.services import tenants


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(url)
        upgrade(engine)
        fb = Farebox(engine=engine, clock=SystemClock(), settings=Settings(database_url=url))
        demo.load_catalogs(fb)
        tenants.create_tenant(fb, SYSTEM, tenant_id="acme", name="Acme", owner_email="owner@acme.test")
        payments.add_payment_method(fb, SYSTEM, "acme", token=GOOD_CARD)
        sub = subscriptions.subscribe(fb, SYSTEM, "acme", catalog="agent-sessions", plan="sme")

        def run(kind: str) -> float:
            start = time.perf_counter()
            for i in range(n):
                with fb.uow() as uow:
                    data = {
                        "meter": "sessions",
                        "before": i,
                        "after": i + 1,
                        "included": 10 * n,
                        "limit": None,
                        "trial": False,
                        "period_start": sub.period.start.isoformat(),
                        "period_end": sub.period.end.isoformat(),
                    }
                    publish(uow, Signal(kind, "acme", fb.clock.now(), subject=sub.id, data=data))
                    uow.commit()
            return n / (time.perf_counter() - start)

        run("bench.nobody_listens")  # warm up
        baseline = with_alerts = 0.0
        for _ in range(3):  # interleaved, best of three each: the machine is noisy
            baseline = max(baseline, run("bench.nobody_listens"))
            with_alerts = max(with_alerts, run("usage.recorded"))
        print(
            f"usage.recorded with the alerts listener: {with_alerts:,.0f}/s; baseline (no listener): "
            f"{baseline:,.0f}/s; ratio {with_alerts / baseline:.2f}"
        )
        engine.dispose()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
