"""The worker loop: due work, alert delivery and the billing pass, again and again.

`farebox worker` runs it in the foreground; `farebox serve` runs it on a
background thread of the server process unless `--no-worker` is given, so
`make run` alone renews, expires trials, retries payments and delivers
e-mails and webhooks.  Every pass opens its own transactions (the services
do), so a pass that fails is rolled back and the loop goes on with the next
one; what was still due is taken up then.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from farebox.alerts.services import delivery
from farebox.alerts.services.delivery import DeliveryReport
from farebox.bootstrap import Farebox
from farebox.entrypoints import metrics
from farebox.events import due
from farebox.events.due import Processed
from farebox.invoicing.services import billing_run
from farebox.kernel.access import SYSTEM

log = logging.getLogger("farebox.worker")


@dataclass
class PassReport:
    """What one pass did."""

    processed: list[Processed] = field(default_factory=list)
    deliveries: DeliveryReport = field(default_factory=DeliveryReport)
    invoiced: int = 0

    @property
    def busy(self) -> bool:
        """True when the pass found work (the loop then goes on at once instead of sleeping)."""
        return bool(self.processed or self.invoiced or self.deliveries.count)


def run_pass(fb: Farebox, *, lease: timedelta = delivery.LEASE, limit: int = 1000) -> PassReport:
    """Due items on the real clock, then the outbox, then the billing run."""
    processed = due.run_due(fb, limit=limit)
    sent = delivery.deliver_pending(fb, limit=limit, lease=lease)
    billed = billing_run.run(fb, SYSTEM, on_progress=metrics.billing_progress)
    report = PassReport(processed=processed, deliveries=sent, invoiced=billed.invoiced)
    metrics.observe_pass(report.processed, report.deliveries, report.invoiced)
    return report


def run_forever(
    fb: Farebox,
    *,
    interval: float = 1.0,
    lease: timedelta = delivery.LEASE,
    stop: threading.Event | None = None,
    on_pass: Callable[[PassReport], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
) -> None:
    """Pass after pass until `stop` is set; a busy pass is followed at once by the next."""
    stop = stop or threading.Event()
    metrics.watch_engine(fb.engine)
    while not stop.is_set():
        started = time.perf_counter()
        try:
            report = run_pass(fb, lease=lease)
        except Exception as exc:  # the failed pass rolled back; the next one takes up what is still due
            metrics.WORKER_PASSES.labels(outcome="failed").inc()
            if on_error is not None:
                on_error(exc)
            else:
                log.exception("worker pass failed; retrying in %ss", interval)
            stop.wait(interval)
            continue
        metrics.WORKER_PASSES.labels(outcome="ok").inc()
        metrics.WORKER_PASS_SECONDS.observe(time.perf_counter() - started)
        if on_pass is not None:
            on_pass(report)
        if not report.busy:
            stop.wait(interval)


class BackgroundWorker:
    """`run_forever` on a daemon thread of the server process (`farebox serve`)."""

    def __init__(self, fb: Farebox, *, interval: float = 1.0, lease: timedelta = delivery.LEASE) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=run_forever,
            kwargs={"fb": fb, "interval": interval, "lease": lease, "stop": self._stop, "on_pass": _log_pass},
            name="farebox-worker",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


def _log_pass(report: PassReport) -> None:
    for item in report.processed:
        log.info("%s %s %s: %s", item.tenant_id, item.kind, item.ref, item.outcome)
    sent = report.deliveries
    if sent.count:
        log.info(
            "deliveries: %d delivered, %d retrying, %d failed",
            len(sent.delivered),
            len(sent.retrying),
            len(sent.failed),
        )
    if report.invoiced:
        log.info("billing pass: %d invoice(s) issued", report.invoiced)
