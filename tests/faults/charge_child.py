"""A child process for tests/faults/test_charge_after_commit.py: subscribes (and is killed
around the provider call), or runs a worker pass; its provider keeps a ledger file of the
charges it made, one per idempotency key, as Stripe does."""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from farebox.bootstrap import Farebox
from farebox.events import due, signals
from farebox.kernel.access import SYSTEM
from farebox.kernel.clock import FrozenClock
from farebox.payments.providers.base import ChargeResult
from farebox.payments.providers.sandbox import SandboxProvider
from farebox.settings import Settings
from farebox.storage.engine import make_engine
from farebox.subscriptions.services import subscriptions

from support import START

KILLED = 9


class LedgerProvider(SandboxProvider):
    """Charges once per idempotency key (a repeated key answers the first charge), recorded in a file."""

    def __init__(self, ledger: Path, die: str | None) -> None:
        self.ledger, self.die = ledger, die

    def charge(self, **kw: Any) -> ChargeResult:
        if self.die == "before":
            os._exit(KILLED)  # killed after the issuing commit, before the provider heard of it
        result = super().charge(**kw)
        known = (
            {json.loads(line)["key"] for line in self.ledger.read_text().splitlines()}
            if self.ledger.exists()
            else set()
        )
        with self.ledger.open("a") as f:
            f.write(
                json.dumps(
                    {
                        "key": kw["idempotency_key"],
                        "amount": kw["amount"].amount_minor,
                        "new": kw["idempotency_key"] not in known,
                    }
                )
                + "\n"
            )
        if self.die == "after":
            os._exit(KILLED)  # killed after the provider charged, before the answer was recorded
        return result


def main(url: str, mode: str, ledger: str) -> None:
    signals.load_all()
    minutes = 0 if mode.startswith("subscribe") else 11  # the worker runs after the resend fell due
    provider = LedgerProvider(Path(ledger), mode.split(":")[1] if ":" in mode else None)
    fb = Farebox(
        engine=make_engine(url),
        clock=FrozenClock(START + timedelta(minutes=minutes)),
        settings=Settings(database_url=url),
        payment_provider=provider,
    )
    if mode.startswith("subscribe"):
        subscriptions.subscribe(fb, SYSTEM, "acme", catalog="session-caps", plan="pro", cause="test")
    else:
        print(json.dumps([p.outcome for p in due.run_due(fb)]))


if __name__ == "__main__":
    main(*sys.argv[1:4])
