"""Signals: how one area tells the others that something happened, inside the same transaction.

A service that changes something publishes a `Signal` (`publish(uow, signal)`)
inside its unit of work; every listener registered for that kind runs at once,
in the same transaction.  So an alert written to the outbox, a proration
invoice or the audit-log row commits or rolls back together with the change
that caused it (G3, G12), and no area imports another area's internals:

    lifecycle  --subscription.*-->  alerts, invoicing, metering, audit
    metering   --usage.*, occurrence.*-->  alerts, lifecycle
    invoicing  --invoice.*-->  lifecycle (dunning), alerts

Listeners and due-item handlers are registered when their module is imported;
`load_all()` imports every module named in `MODULES` (bootstrap calls it), so a
worker or a CLI command sees the same wiring as the API.

The kinds in use, with their `data`, are listed in docs/architecture.md.

A batch job publishing many signals of one kind (the billing run: thousands of
`invoice.issued`) calls `publish_all`; a listener may register a *batch form*
(`batch_form_of`) that does for a list of signals exactly what it does for
each one, in fewer statements.  Listeners without one run once per signal.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from farebox.storage.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class Signal:
    kind: str  # "area.event", e.g. "subscription.plan_changed"
    tenant_id: str
    at: datetime  # the tenant's time (its test clock's, or real)
    actor: str = "system"  # who caused it: "operator", "user:<id>", "key:<id>", "system", "worker"
    subject: str | None = None  # the id of the thing it is about (subscription, invoice, occurrence...)
    data: Mapping[str, Any] = field(default_factory=dict)


Listener = Callable[[UnitOfWork, Signal], None]
BatchListener = Callable[[UnitOfWork, Sequence[Signal]], None]
_LISTENERS: dict[str, list[Listener]] = {}
_BATCH_FORMS: dict[Listener, BatchListener] = {}
_ANY = "*"

# Every module that registers listeners or due-item handlers.  Add yours here.
MODULES: tuple[str, ...] = (
    "farebox.subscriptions.services.subscriptions",
    "farebox.records.services.audit",
    "farebox.metering.services.admission",
    "farebox.metering.services.usage",
    "farebox.subscriptions.services.due_work",
    "farebox.subscriptions.services.listeners",
    "farebox.alerts.services.notify",
    "farebox.invoicing.services.issuing",
    "farebox.payments.service",
    "farebox.invoicing.services.credits",
)


def on(*kinds: str) -> Callable[[Listener], Listener]:
    """Register a listener for these kinds ("*" for every kind)."""

    def register(fn: Listener) -> Listener:
        for kind in kinds or (_ANY,):
            if fn not in _LISTENERS.setdefault(kind, []):
                _LISTENERS[kind].append(fn)
        return fn

    return register


def publish(uow: UnitOfWork, signal: Signal) -> None:
    """Run every listener of `signal.kind` (then the "*" ones) in the caller's transaction."""
    for fn in (*_LISTENERS.get(signal.kind, ()), *_LISTENERS.get(_ANY, ())):
        fn(uow, signal)


def batch_form_of(listener: Listener) -> Callable[[BatchListener], BatchListener]:
    """Register `fn(uow, signals)` as doing, for all `signals` at once, what `listener` does for each."""

    def register(fn: BatchListener) -> BatchListener:
        _BATCH_FORMS[listener] = fn
        return fn

    return register


def publish_all(uow: UnitOfWork, batch: Sequence[Signal]) -> None:
    """Publish signals of one kind together: each listener handles the whole batch (its batch
    form, or once per signal in order) before the next listener runs."""
    if not batch:
        return
    kind = batch[0].kind
    if any(signal.kind != kind for signal in batch):
        raise ValueError("publish_all takes signals of one kind")
    for fn in (*_LISTENERS.get(kind, ()), *_LISTENERS.get(_ANY, ())):
        batch_fn = _BATCH_FORMS.get(fn)
        if batch_fn is not None:
            batch_fn(uow, batch)
        else:
            for signal in batch:
                fn(uow, signal)


def listeners(kind: str) -> list[Listener]:
    return list(_LISTENERS.get(kind, ()))


_loaded = False


def load_all() -> None:
    """Import every wired module once (idempotent)."""
    global _loaded
    if _loaded:
        return
    for name in MODULES:
        importlib.import_module(name)
    _loaded = True
