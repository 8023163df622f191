"""Shared set-up for the benchmarks: a migrated database with the bundled catalogs and a tenant."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from farebox.bootstrap import Farebox
from farebox.demo import data as demo
from farebox.kernel.access import SYSTEM
from farebox.kernel.clock import FrozenClock
from farebox.payments import service as payments
from farebox.payments.providers.sandbox import SUCCEEDS as GOOD_CARD
from farebox.settings import Settings
from farebox.storage.engine import make_engine, normalise_url
from farebox.storage.migrate import upgrade
from farebox.subscriptions.services import subscriptions
from farebox.tenants.services import tenants

START = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)


def database(engine_name: str) -> tuple[str, callable]:
    """A fresh database URL and a function that drops it."""
    if engine_name == "sqlite":
        path = os.path.join(tempfile.mkdtemp(prefix="farebox-bench-"), "bench.db")
        return f"sqlite:///{path}", lambda: None
    server = make_url(normalise_url(os.environ.get("FAREBOX_BENCH_POSTGRES") or os.environ["FAREBOX_TEST_POSTGRES"]))
    name = f"farebox_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return server.set(database=name).render_as_string(hide_password=False), drop


def copy_database(url: str) -> tuple[str, callable]:
    """A PostgreSQL database made from the one at `url` (which nobody may be connected to) as a template, and a
    function that drops the copy."""
    source = make_url(url)
    name = f"{source.database}_copy"
    admin = create_engine(source.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{source.database}"'))

    def drop() -> None:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return source.set(database=name).render_as_string(hide_password=False), drop


def farebox(url: str) -> Farebox:
    engine = make_engine(url)
    upgrade(engine)
    fb = Farebox(
        engine=engine, clock=FrozenClock(START), settings=Settings(database_url=url, operator_key="bench-operator-key")
    )
    demo.load_catalogs(fb)
    return fb


def tenant(fb: Farebox, tenant_id: str, catalog: str, plan: str) -> None:
    tenants.create_tenant(fb, SYSTEM, tenant_id=tenant_id, name=tenant_id, owner_email=f"owner@{tenant_id}.test")
    payments.add_payment_method(fb, SYSTEM, tenant_id, token=GOOD_CARD)
    subscriptions.subscribe(fb, SYSTEM, tenant_id, catalog=catalog, plan=plan, cause="bench")


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def report(title: str, rows: list[tuple[str, float, str]]) -> None:
    print(f"\n{title}")
    for name, value, unit in rows:
        print(f"  {name:<44} {value:>12,.1f} {unit}")


def median(xs: list[float]) -> float:
    return statistics.median(xs)


@contextmanager
def served(url: str, *, workers: int = 1, key: str = "bench-operator-key") -> Iterator[str]:
    """`farebox serve` on a free loopback port, in its own process; yields its base URL."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAREBOX_")}
    env.update(
        PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"),
        FAREBOX_DATABASE_URL=url,
        FAREBOX_OPERATOR_KEY=key,
        FAREBOX_LOG_LEVEL="warning",
    )
    command = ["serve", "--no-worker", "--port", str(port), "--workers", str(workers)]  # the API alone is measured
    server = subprocess.Popen([sys.executable, "-m", "farebox", *command], env=env)
    base = f"http://127.0.0.1:{port}"
    SERVERS[base] = server.pid
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
            if time.monotonic() > deadline:
                raise SystemExit("farebox serve did not come up")
        yield base
    finally:
        SERVERS.pop(base, None)
        server.terminate()
        server.wait(timeout=30)


SERVERS: dict[str, int] = {}  # base URL -> process id, while `served` runs


def server_cpu_seconds(base: str) -> float:
    """CPU time (user + system) used so far by the server at `base` and its worker processes (Linux `/proc`).

    Per request it is a figure that other work on the machine hardly moves, unlike a rate."""
    root, tick = SERVERS[base], os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(times.get(pid, 0.0) for pid in tree)
