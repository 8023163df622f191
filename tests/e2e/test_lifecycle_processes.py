"""Due work through real processes: two workers never renew a period twice;
`farebox clock advance` runs what falls due (G2)."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select, text

from farebox.bootstrap import Farebox
from farebox.clocks import service as clocks
from farebox.demo import data as demo
from farebox.kernel.access import SYSTEM
from farebox.kernel.clock import FrozenClock
from farebox.kernel.periods import periods_between
from farebox.settings import Settings
from farebox.storage.engine import make_engine
from farebox.storage.migrate import upgrade
from farebox.storage.tables import metadata
from farebox.storage.tables.core import due_items
from farebox.storage.tables.subscriptions import subscription_transitions
from farebox.subscriptions.services import subscriptions

from factories import make_tenant
from support import subprocess_env


def _truncate(engine) -> None:
    names = ", ".join(f'"{t.name}"' for t in reversed(metadata.sorted_tables))
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


def _box(url: str, start: datetime) -> Farebox:
    return Farebox(
        engine=make_engine(url),
        clock=FrozenClock(start),
        settings=Settings(database_url=url, operator_key="test-operator-key"),
    )


def test_G2_two_workers_on_postgresql_renew_each_period_exactly_once(postgres_url):
    """A year of monthly renewals fell due while nobody ran; two workers catch up at once."""
    engine = make_engine(postgres_url, pool=False)
    _truncate(engine)
    engine.dispose()
    anchor = (datetime.now(timezone.utc) - timedelta(days=365)).replace(microsecond=0)
    fb = _box(postgres_url, anchor)
    demo.load_catalogs(fb)
    tenants = [f"t{i}" for i in range(6)]
    for tenant in tenants:
        make_tenant(fb, tenant_id=tenant, catalog="session-caps", plan="pro")
    env = subprocess_env(FAREBOX_DATABASE_URL=postgres_url)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "farebox", "worker", "--once"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    now = datetime.now(timezone.utc)
    expected = len(list(periods_between(anchor, "month", anchor, now))) - 1  # period ends passed so far
    assert expected >= 11
    with fb.engine.connect() as conn:
        for tenant in tenants:
            renewals = conn.execute(
                select(subscription_transitions.c.details).where(subscription_transitions.c.tenant_id == tenant)
            ).scalars().all()
            starts = [d["period_start"] for d in renewals if d.get("event") == "renew"]
            assert len(starts) == len(set(starts)) == expected, tenant
        done = conn.execute(
            select(func.count())
            .select_from(due_items)
            .where(due_items.c.done_at.is_not(None), due_items.c.kind == "period_end")
        ).scalar_one()  # each period end once (the payment resend checks that also fell due are not renewals)
    assert done == expected * len(tenants)
    both = [line for out, _ in outputs for line in out.splitlines() if "renewed" in line]
    assert len(both) == expected * len(tenants)
    fb.engine.dispose()


def test_G2_cli_clock_advance_runs_the_trial_end(tmp_path):
    url = f"sqlite:///{tmp_path / 'fb.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    start = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
    fb = _box(url, start)
    demo.load_catalogs(fb)
    clock = clocks.create(fb, SYSTEM, name="cli", start=start)
    make_tenant(fb, tenant_id="acme")
    clocks.attach(fb, SYSTEM, clock["id"], "acme")
    subscriptions.subscribe(fb, SYSTEM, "acme", catalog="agent-sessions", plan="sme", trial=True)
    fb.engine.dispose()
    env = subprocess_env(FAREBOX_DATABASE_URL=url, COLUMNS="250")
    run = subprocess.run(
        [sys.executable, "-m", "farebox", "clock", "advance", clock["id"], "--by", "36h"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "0 due items" in run.stdout
    run = subprocess.run(
        [sys.executable, "-m", "farebox", "clock", "advance", clock["id"], "--by", "13d"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "trial_end" in run.stdout and "trial ended: expired" in run.stdout
