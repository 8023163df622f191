"""Scale-out on PostgreSQL (issue 9, G3, G4, S4, A1, G13; docs/deployment.md): two
`farebox serve` processes and two `farebox worker` processes against one database.

Client threads drive admissions (joins into a hard-capped occurrence, conversation
messages) and usage ingestion through both servers at once, sending duplicates and the
same Idempotency-Key to both; a test clock is advanced through the operator API of each
server in turn, while the two workers catch up renewals and billing that fell due on the
real clock.  At the end: every counter equals `farebox usage verify` (no difference), no
invoice exists twice for a subscription, period and kind, no charge twice, no cap passed.
"""

from __future__ import annotations

import itertools
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import func, select, text

from farebox.bootstrap import Farebox
from farebox.catalog import service as catalog
from farebox.clocks import service as clocks
from farebox.demo import data as demo
from farebox.kernel.access import SYSTEM
from farebox.kernel.clock import FrozenClock
from farebox.kernel.periods import periods_between
from farebox.settings import Settings
from farebox.storage.engine import make_engine
from farebox.storage.tables import metadata
from farebox.storage.tables.core import due_items
from farebox.storage.tables.invoicing import invoices
from farebox.storage.tables.metering import conversations, occurrences
from farebox.storage.tables.payments import payment_attempts
from farebox.subscriptions.services import subscriptions

from factories import make_tenant
from support import subprocess_env

pytestmark = pytest.mark.slow

OPERATOR_KEY = "scaleout-operator-key"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
CAP = 40  # attendees per occurrence, hard
CAPPED_CATALOG = f"""
name: webinar-caps
title: Hard-capped webinars (scale-out test)
currency: USD
meters:
  attendees: {{kind: attendees, scope: occurrence, unit: attendee}}
plans:
  capped:
    name: Capped
    price: "10.00"
    interval: month
    limits:
      attendees: {{included: {CAP}, policy: hard}}
"""
START = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
WEBINARS = ("web1", "web2")  # on the test clock, hard-capped occurrences
AGENTS = ("agents1", "agents2")  # on the test clock, conversation messages
LATE = ("late1", "late2", "late3")  # on the real clock, three months unbilled: the workers' work
PEOPLE = 100  # distinct people trying to join each capped occurrence
CONVERSATIONS = 25


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _box(url: str, at: datetime) -> Farebox:
    return Farebox(
        engine=make_engine(url), clock=FrozenClock(at), settings=Settings(database_url=url, operator_key=OPERATOR_KEY)
    )


@pytest.fixture
def database(postgres_url):
    engine = make_engine(postgres_url, pool=False)
    names = ", ".join(f'"{t.name}"' for t in reversed(metadata.sorted_tables))
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return postgres_url


@pytest.fixture
def prepared(database):
    """The data, written before any server or worker runs (a worker would renew on the real clock
    a tenant not yet attached to the test clock)."""
    return _setup(database)


@pytest.fixture
def processes(database, prepared, tmp_path):
    """Two API servers on their own ports and two workers, all on the one database (logs in tmp_path)."""
    env = subprocess_env(FAREBOX_DATABASE_URL=database, FAREBOX_OPERATOR_KEY=OPERATOR_KEY, FAREBOX_LOG_LEVEL="warning")
    ports = [_free_port(), _free_port()]
    commands = [["serve", "--port", str(p), "--no-worker"] for p in ports] + [["worker", "--interval", "0.2"]] * 2
    started = []
    for n, args in enumerate(commands):
        log = open(tmp_path / f"{args[0]}-{n}.log", "w")
        started.append(
            subprocess.Popen(
                [sys.executable, "-m", "farebox", *args], env=env, stdout=log, stderr=subprocess.STDOUT, text=True
            )
        )
        log.close()
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        deadline = time.monotonic() + 60
        for base in bases:
            while True:
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "farebox serve did not come up"
                assert all(p.poll() is None for p in started), "a process died at start"
                time.sleep(0.2)
        yield bases, started
    finally:
        for p in started:
            p.terminate()
        for p in started:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)


def _setup(url: str) -> tuple[str, datetime]:
    """Catalogs, tenants with a good sandbox card, one test clock; returns the clock id and the late anchor."""
    fb = _box(url, START)
    demo.load_catalogs(fb)
    catalog.load_document(fb, SYSTEM, CAPPED_CATALOG)
    clock = clocks.create(fb, SYSTEM, name="scale-out", start=START)
    for tenant_id, catalog_name, plan in [(t, "webinar-caps", "capped") for t in WEBINARS] + [
        (t, "agent-sessions", "sme") for t in AGENTS
    ]:
        make_tenant(fb, tenant_id=tenant_id)
        clocks.attach(fb, SYSTEM, clock["id"], tenant_id)
        subscriptions.subscribe(fb, SYSTEM, tenant_id, catalog=catalog_name, plan=plan, cause="scale-out test")
    fb.engine.dispose()
    anchor = (datetime.now(timezone.utc) - timedelta(days=95)).replace(microsecond=0)
    late = _box(url, anchor)
    for tenant_id in LATE:
        make_tenant(late, tenant_id=tenant_id, catalog="agent-sessions", plan="sme")
    late.engine.dispose()
    return clock["id"], anchor


class Driver:
    """Client threads, each with its own connection to each server; requests alternate servers."""

    def __init__(self, bases: list[str], threads: int = 8) -> None:
        self.bases = bases
        self.local = threading.local()
        self.pool = ThreadPoolExecutor(threads)
        self.turn = itertools.count()
        self.statuses: Counter[int] = Counter()
        self.lock = threading.Lock()

    def post(self, path: str, body: dict, *, server: int | None = None, key: str | None = None) -> dict:
        clients = getattr(self.local, "clients", None)
        if clients is None:
            clients = self.local.clients = [httpx.Client(base_url=b, timeout=120) for b in self.bases]
        index = next(self.turn) % len(self.bases) if server is None else server
        headers = {**OPERATOR, **({"Idempotency-Key": key} if key else {})}
        response = clients[index].post(path, json=body, headers=headers)
        with self.lock:
            self.statuses[response.status_code] += 1
        assert response.status_code in (200, 201), response.text
        return response.json()

    def all(self, calls) -> list:
        return list(self.pool.map(lambda call: call(), calls))


def test_G3_two_servers_and_two_workers_on_postgresql_count_bill_and_cap_exactly(database, prepared, processes):
    clock_id, anchor = prepared
    bases, started = processes
    drive = Driver(bases)

    # 1. admissions, ingestion and retries through both servers at once
    joins = [
        (lambda t=t, p=p, s=s: drive.post(f"/v1/tenants/{t}/occurrences/o1/join", {"person_id": f"p{p}"}, server=s))
        for p in range(PEOPLE) for t in WEBINARS for s in (0, 1)  # every person through both servers
    ]
    messages = [
        (lambda t=t, c=c: drive.post(f"/v1/tenants/{t}/conversations/c{c}/messages", {"from": "customer"}))
        for c in range(CONVERSATIONS) for t in AGENTS for _ in range(3)
    ]
    retried = [  # one request, retried through the other server with the same key
        (
            lambda t=t, c=c, s=s: {
                "retried": f"{t}-k{c}",
                **drive.post(
                    f"/v1/tenants/{t}/conversations/k{c}/messages", {"from": "customer"}, server=s, key=f"{t}-k{c}"
                ),
            }
        )
        for c in range(CONVERSATIONS)
        for t in AGENTS
        for s in (0, 1)
    ]
    batches = [
        [
            {
                "id": f"ev{b}-{i}",
                "source": "scale-out",
                "type": "attendee.joined",
                "data": {"occurrence_id": "o2", "person_id": f"p{b * 20 + i}"},
            }
            for i in range(20)
        ]
        for b in range(PEOPLE // 20)
    ]
    ingest = [  # each batch sent to both servers: every event counts once
        (lambda t=t, events=events, s=s: drive.post(f"/v1/tenants/{t}/usage/events", {"events": events}, server=s))
        for events in batches for t in WEBINARS for s in (0, 1)
    ]
    calls = [c for group in itertools.zip_longest(joins, messages, retried, ingest) for c in group if c is not None]
    answers = drive.all(calls)
    assert set(drive.statuses) == {200}, drive.statuses

    assert (
        Counter(a.get("reason") for a in answers)["attendee_cap_reached"] > 0
    )  # the cap was hit, refused with its reason
    replayed = Counter(a["retried"] for a in answers if "retried" in a and a["counted"])
    assert replayed == {f"{t}-k{c}": 2 for c in range(CONVERSATIONS) for t in AGENTS}  # the retry got the first answer

    # 2. the test clock moves, through the operator API of each server in turn
    period_end = drive.post(f"/v1/test-clocks/{clock_id}/advance", {"by": "32d"}, server=0)
    assert [i["kind"] for i in period_end["processed"]].count("period_end") == len(WEBINARS + AGENTS), period_end
    drive.all([
        (lambda t=t, c=c: drive.post(f"/v1/tenants/{t}/conversations/next{c}/messages", {"from": "customer"}))
        for c in range(CONVERSATIONS) for t in AGENTS
    ])
    drive.post(f"/v1/test-clocks/{clock_id}/advance", {"by": "31d"}, server=1)

    # 3. the workers catch up the late tenants' renewals and bills (three months on the real clock)
    fb = _box(database, START)
    late_periods = len(list(periods_between(anchor, "month", anchor, datetime.now(timezone.utc))))
    deadline = time.monotonic() + 240
    with fb.engine.connect() as conn:
        while True:
            billed = conn.execute(
                select(func.count()).select_from(invoices).where(invoices.c.tenant_id.in_(LATE))
            ).scalar_one()
            pending = conn.execute(
                select(func.count())
                .select_from(due_items)
                .where(
                    due_items.c.tenant_id.in_(LATE),
                    due_items.c.done_at.is_(None),
                    due_items.c.due_at <= datetime.now(timezone.utc),
                )
            ).scalar_one()
            if billed >= late_periods * len(LATE) and pending == 0:
                break
            assert time.monotonic() < deadline, (billed, pending, [p.poll() for p in started])
            time.sleep(0.5)
    assert all(p.poll() is None for p in started), "a server or worker died"

    # 4. the end state
    verify = subprocess.run(
        [sys.executable, "-m", "farebox", "usage", "verify"],
        env=subprocess_env(FAREBOX_DATABASE_URL=database),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0 and "ok" in verify.stdout, verify.stdout + verify.stderr
    assert httpx.get(bases[1] + "/v1/usage/verify", headers=OPERATOR).json() == []
    with fb.engine.connect() as conn:
        counted = dict(
            conn.execute(
                select(occurrences.c.tenant_id, func.max(occurrences.c.counted)).group_by(occurrences.c.tenant_id)
            ).all()
        )
        assert counted == {t: CAP for t in WEBINARS}  # 100 people, 2 servers, cap 40: exactly 40 each
        per_occurrence = conn.execute(select(occurrences.c.tenant_id, occurrences.c.id, occurrences.c.counted)).all()
        assert sorted(per_occurrence) == sorted((t, o, CAP) for t in WEBINARS for o in ("o1", "o2"))
        billable = dict(
            conn.execute(
                select(conversations.c.tenant_id, func.sum(conversations.c.billable)).group_by(
                    conversations.c.tenant_id
                )
            ).all()
        )
        assert billable == {t: 3 * CONVERSATIONS for t in AGENTS}  # c*, k* (retried once), next*: one window each
        twice = conn.execute(
            select(invoices.c.subscription_id, invoices.c.period_start_at, invoices.c.kind, func.count())
            .group_by(invoices.c.subscription_id, invoices.c.period_start_at, invoices.c.kind)
            .having(func.count() > 1)
        ).all()
        assert twice == []  # no invoice twice
        per_tenant = Counter(t for (t,) in conn.execute(select(invoices.c.tenant_id)))
        assert {t: per_tenant[t] for t in WEBINARS + AGENTS} == {
            t: 3 for t in WEBINARS + AGENTS
        }  # first period + 2 renewals
        assert {t: per_tenant[t] for t in LATE} == {t: late_periods for t in LATE}
        charges = conn.execute(
            select(payment_attempts.c.invoice_id, func.count())
            .where(payment_attempts.c.status == "succeeded")
            .group_by(payment_attempts.c.invoice_id)
        ).all()
        assert charges and all(n == 1 for _, n in charges)  # no charge twice
        unpaid = conn.execute(
            select(func.count()).select_from(invoices).where(invoices.c.status != "paid", invoices.c.total_minor > 0)
        ).scalar_one()
        assert unpaid == 0
    fb.engine.dispose()
