"""Work that falls due: renewals, trial ends, grace ends, scheduled changes, retention.

Each kind of due item has one handler, registered with `@handler("kind")`.
The worker runs items on the real clock; advancing a test clock runs the
same handlers, in due order, with `now` set to each item's due time (G2).
A handler runs inside the unit of work that marks its item done, so an item
is processed exactly once even with several workers (row lock with SKIP
LOCKED on PostgreSQL; SQLite has one writer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from farebox.bootstrap import Farebox
from farebox.events import db as repo
from farebox.storage.ids import new_id
from farebox.storage.uow import UnitOfWork

Handler = Callable[[UnitOfWork, dict[str, Any], datetime], str]
HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        if kind in HANDLERS and HANDLERS[kind] is not fn:
            raise ValueError(f"a handler for due items of kind {kind!r} is registered already")
        HANDLERS[kind] = fn
        return fn

    return register


def schedule(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    kind: str,
    ref: str,
    due_at: datetime,
    now: datetime,
    payload: dict[str, Any] | None = None,
) -> bool:
    """Add a due item (inside the caller's unit of work); a duplicate is ignored."""
    if kind not in HANDLERS:
        raise ValueError(f"no handler for due items of kind {kind!r}")
    return repo.schedule(
        uow.conn,
        tenant_id=tenant_id,
        id=new_id("due"),
        kind=kind,
        ref=ref,
        due_at=due_at,
        payload=payload or {},
        created_at=now,
    )


def schedule_all(
    uow: UnitOfWork, *, kind: str, items: Sequence[tuple[str, str, datetime, datetime, dict[str, Any]]]
) -> None:
    """`schedule` of many `(tenant_id, ref, due_at, now, payload)` items of one kind at once."""
    if kind not in HANDLERS:
        raise ValueError(f"no handler for due items of kind {kind!r}")
    repo.schedule_all(
        uow.conn,
        [
            {
                "tenant_id": t,
                "id": new_id("due"),
                "kind": kind,
                "ref": ref,
                "due_at": due_at,
                "payload": payload,
                "created_at": now,
            }
            for t, ref, due_at, now, payload in items
        ],
    )


def cancel(uow: UnitOfWork, *, tenant_id: str, kind: str, ref: str, now: datetime) -> int:
    return repo.cancel(uow.conn, tenant_id, kind=kind, ref=ref, now=now)


def cancel_all(uow: UnitOfWork, *, kind: str, refs: Sequence[tuple[str, str, datetime]]) -> None:
    """`cancel` for many `(tenant_id, ref, now)` at once (one statement, executed for each)."""
    repo.cancel_all(uow.conn, kind=kind, refs=refs)


@dataclass(frozen=True)
class Processed:
    tenant_id: str
    kind: str
    ref: str
    due_at: datetime
    outcome: str


def run_item(uow: UnitOfWork, item: dict[str, Any], now: datetime) -> Processed:
    """Run one item's handler and mark it done, in the caller's unit of work."""
    fn = HANDLERS.get(item["kind"])
    outcome = fn(uow, item, now) if fn is not None else f"skipped: no handler for {item['kind']!r}"
    repo.mark_done(uow.conn, item["tenant_id"], item["id"], now=now, outcome=outcome)
    return Processed(item["tenant_id"], item["kind"], item["ref"], item["due_at"], outcome)


def run_due(fb: Farebox, *, limit: int = 100) -> list[Processed]:
    """One worker pass over the tenants on the real clock: every item due now (and, now and then, the retention
    sweep)."""
    from farebox.records.services import retention

    retention.sweep_now_and_then(fb)
    done: list[Processed] = []
    while len(done) < limit:
        with fb.uow() as uow:
            now = fb.clock.now()
            items = repo.claim_real_time(uow.conn, now, 1)
            if not items:
                return done
            done.append(run_item(uow, items[0], now))
            uow.commit()
    return done
