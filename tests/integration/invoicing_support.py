"""Helpers for invoicing tests: publish the lifecycle's signals as it would, record ours."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from farebox.bootstrap import Farebox
from farebox.clocks.service import now_for
from farebox.events import signals
from farebox.events.signals import Signal


def publish(
    fb: Farebox, kind: str, tenant_id: str, subject: str, data: dict[str, Any], at: datetime | None = None
) -> None:
    with fb.uow() as uow:
        signals.publish(uow, Signal(kind, tenant_id, at or now_for(uow, fb.clock, tenant_id), "test", subject, data))
        uow.commit()


@contextmanager
def recording(*kinds: str) -> Iterator[list[Signal]]:
    seen: list[Signal] = []

    def listener(uow, signal: Signal) -> None:
        seen.append(signal)

    for kind in kinds:
        signals.on(kind)(listener)
    try:
        yield seen
    finally:
        for kind in kinds:
            signals._LISTENERS[kind].remove(listener)
