"""What farebox keeps for a while only, and the worker's sweep that forgets it
(so storage does not grow without bound).

- Idempotency keys and their stored answers: `IDEMPOTENCY_RETENTION` (24 hours,
  as Stripe) after the first request; a retry later than that runs again.
- Portal sign-in links and sessions: removed once expired.
- Requests for sign-in links (kept for the rate limits): one day.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from farebox.bootstrap import Farebox
from farebox.storage import idempotency as idem_repo
from farebox.tenants.db import sign_in as portal_repo

IDEMPOTENCY_RETENTION = timedelta(hours=24)
LINK_REQUEST_RETENTION = timedelta(days=1)
BATCH = 1000
SWEEP_EVERY_SECONDS = 60.0
_last_sweep: dict[int, float] = {}  # per container (id), monotonic seconds


@dataclass(frozen=True, slots=True)
class Swept:
    idempotency_keys: int
    portal_rows: int


def sweep(fb: Farebox, *, batches: int = 10) -> Swept:
    """Forget what is past its retention, `BATCH` keys per committed transaction."""
    now = fb.clock.now()
    keys = 0
    for _ in range(batches):
        with fb.uow() as uow:
            removed = idem_repo.delete_created_before(uow.conn, now - IDEMPOTENCY_RETENTION, limit=BATCH)
            uow.commit()
        keys += removed
        if removed < BATCH:
            break
    with fb.uow() as uow:
        portal_rows = portal_repo.sweep(uow.conn, now, requests_before=now - LINK_REQUEST_RETENTION)
        uow.commit()
    return Swept(keys, portal_rows)


def sweep_now_and_then(fb: Farebox) -> Swept | None:
    """The worker's pass calls this each time; it sweeps once a minute per container."""
    now = time.monotonic()
    last = _last_sweep.get(id(fb))
    if last is not None and now - last < SWEEP_EVERY_SECONDS:
        return None
    _last_sweep[id(fb)] = now
    return sweep(fb)
