"""Prometheus metrics, measured at the edges: `/metrics` in the text exposition format.

What is counted and where (docs/deployment.md, "Metrics", lists the alerts to set):

- admission decisions and their latency: an ASGI middleware reads each decision the API
  answers (kind, reason, admitted) and times the request; an idempotent replay is not a
  new decision and is not counted;
- ingested usage events by status: the same middleware reads the ingestion answer;
- HTTP answers by route template and status;
- the worker (`farebox worker`, or the thread of `farebox serve`): passes, due items by
  kind, delivery attempts by channel and outcome, billing-run progress;
- database errors: a SQLAlchemy `handle_error` hook on the engine, by error class;
- read at scrape time from the database: the outbox backlog by channel and status, and the
  subscriptions the next billing run would bill.

With `farebox serve --workers N` each process counts on its own: set
`PROMETHEUS_MULTIPROC_DIR` to an empty directory and `/metrics` adds every process up
(prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Engine, event
from sqlalchemy.engine import ExceptionContext

from farebox.alerts.services import delivery
from farebox.alerts.services.delivery import DeliveryReport
from farebox.bootstrap import Farebox
from farebox.events.due import Processed
from farebox.invoicing.services import billing_run

log = logging.getLogger("farebox.metrics")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

DECISIONS = Counter(
    "farebox_decisions", "Admission decisions answered, by kind and reason code", ["kind", "reason", "admitted"]
)
DECISION_SECONDS = Histogram(
    "farebox_decision_seconds", "Time to answer an admission decision over HTTP", ["kind"], buckets=LATENCY_BUCKETS
)
INGESTED_EVENTS = Counter("farebox_ingested_events", "Usage events received by ingestion, by result status", ["status"])
INGEST_SECONDS = Histogram(
    "farebox_ingest_batch_seconds", "Time to answer an ingestion batch over HTTP", buckets=LATENCY_BUCKETS
)
HTTP_RESPONSES = Counter(
    "farebox_http_responses", "HTTP answers by method, route template and status", ["method", "route", "status"]
)
DATABASE_ERRORS = Counter(
    "farebox_database_errors", "Errors raised by the database driver, by class", ["error", "disconnect"]
)
WORKER_PASSES = Counter("farebox_worker_passes", "Worker passes, by outcome (ok, failed)", ["outcome"])
WORKER_PASS_SECONDS = Histogram(
    "farebox_worker_pass_seconds", "Duration of a worker pass", buckets=LATENCY_BUCKETS + (10.0, 30.0, 60.0)
)
WORKER_LAST_PASS = Gauge(
    "farebox_worker_last_pass_timestamp_seconds", "When a worker pass last finished", multiprocess_mode="max"
)
DUE_ITEMS = Counter(
    "farebox_due_items_processed", "Due items run by the worker (renewals, trial ends…), by kind", ["kind"]
)
DELIVERY_ATTEMPTS = Counter(
    "farebox_delivery_attempts", "E-mail and webhook delivery attempts, by channel and outcome", ["channel", "outcome"]
)
BILLING_EXAMINED = Counter(
    "farebox_billing_run_subscriptions", "Subscriptions examined by billing runs in this process"
)
BILLING_INVOICES = Counter("farebox_billing_run_invoices", "Invoices issued by billing runs in this process")

_DECISION_PATH = re.compile(
    r"^/v1/tenants/[^/]+/(?:occurrences/[^/]+/(start|join|leave|register|end)|conversations/[^/]+/(messages))$"
)
_INGEST_PATH = re.compile(r"^/v1/tenants/[^/]+/usage/events$")


def observe_decision(kind: str, body: dict[str, Any], seconds: float) -> None:
    DECISIONS.labels(kind=kind, reason=str(body.get("reason")), admitted=str(bool(body.get("admitted"))).lower()).inc()
    DECISION_SECONDS.labels(kind=kind).observe(seconds)


def count_ingested(applied: int, duplicates: int, refused: int) -> None:
    """A batch's events by result status (the API's ingestion route counts them from its report: the middleware
    does not parse a batch's answer, which for 10,000 events is 3 MB of JSON)."""
    for status, n in (("applied", applied), ("duplicate", duplicates), ("refused", refused)):
        if n:
            INGESTED_EVENTS.labels(status=status).inc(n)


def billing_progress(examined: int) -> None:
    BILLING_EXAMINED.inc(examined)


def observe_pass(processed: Sequence[Processed], deliveries: DeliveryReport, invoiced: int) -> None:
    for item in processed:
        DUE_ITEMS.labels(kind=item.kind).inc()
    for outcome in ("delivered", "retrying", "failed"):
        for delivery_id in getattr(deliveries, outcome):
            DELIVERY_ATTEMPTS.labels(channel=deliveries.channels.get(delivery_id, "unknown"), outcome=outcome).inc()
    BILLING_INVOICES.inc(invoiced)
    WORKER_LAST_PASS.set(time.time())


def watch_engine(engine: Engine) -> None:
    """Count every error the database driver raises on this engine (once per engine)."""
    if not event.contains(engine, "handle_error", _on_database_error):
        event.listen(engine, "handle_error", _on_database_error)


def _on_database_error(context: ExceptionContext) -> None:
    error = type(context.sqlalchemy_exception or context.original_exception).__name__
    DATABASE_ERRORS.labels(error=error, disconnect=str(context.is_disconnect).lower()).inc()


class _StoredState(Collector):
    """Gauges read from the database when Prometheus scrapes: the outbox and the billing backlog."""

    def __init__(self, fb: Farebox) -> None:
        self.fb = fb

    def collect(self) -> Iterator[Metric]:
        outbox = GaugeMetricFamily(
            "farebox_outbox_deliveries",
            "Deliveries not delivered yet, by channel and status (pending, failed)",
            labels=["channel", "status"],
        )
        due = GaugeMetricFamily("farebox_billing_due_subscriptions", "Subscriptions the next billing run would bill")
        try:
            counts = delivery.backlog(self.fb)
            for channel in ("email", "webhook"):
                for status in ("pending", "failed"):
                    outbox.add_metric([channel, status], counts.get((channel, status), 0))
            due.add_metric([], billing_run.due_count(self.fb))
        except Exception:  # a scrape while the database is down still answers the process's own metrics
            log.warning("metrics: the database could not be read", exc_info=True)
            return
        yield outbox
        yield due


class MetricsMiddleware:
    """ASGI middleware: HTTP answers by route, and the decisions and ingestion results the API answers."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        decision = _DECISION_PATH.match(path) if scope["method"] == "POST" else None
        ingest = scope["method"] == "POST" and _INGEST_PATH.match(path) is not None
        started = time.perf_counter()
        state: dict[str, Any] = {"status": 500, "replayed": False, "body": []}

        async def watch(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["replayed"] = any(
                    name.lower() == b"idempotent-replayed" for name, _ in message.get("headers", ())
                )
            elif message["type"] == "http.response.body" and (decision or ingest) and state["status"] == 200:
                if decision:  # an ingestion answer is not read: the route counts its events
                    state["body"].append(message.get("body", b""))
                if not message.get("more_body", False):
                    _observe_answer(decision, ingest, state, time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            HTTP_RESPONSES.labels(method=scope["method"], route=route, status=str(state["status"])).inc()


def _observe_answer(decision: re.Match[str] | None, ingest: bool, state: dict[str, Any], seconds: float) -> None:
    if state["replayed"]:
        return
    if ingest:
        INGEST_SECONDS.observe(seconds)
        return
    try:
        body = json.loads(b"".join(state["body"]))
    except ValueError:
        return
    if decision is not None:
        observe_decision(decision.group(1) or "message", body, seconds)


def exposition(fb: Farebox) -> bytes:
    """What a scrape gets: this process's metrics (every process's in multiprocess mode) and the stored state."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        process: CollectorRegistry = CollectorRegistry()
        MultiProcessCollector(process)
    else:
        process = REGISTRY
    stored = CollectorRegistry(auto_describe=False)
    stored.register(_StoredState(fb))
    return generate_latest(process) + generate_latest(stored)


def install(app: FastAPI) -> None:
    """The middleware, the database hook and `GET /metrics`."""
    app.add_middleware(MetricsMiddleware)
    watch_engine(app.state.fb.engine)

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        return Response(exposition(request.app.state.fb), media_type=CONTENT_TYPE_LATEST)
