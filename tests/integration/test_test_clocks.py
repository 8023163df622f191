"""G2: a test clock that an operator advances; what falls due happens in order."""

from datetime import datetime, timedelta, timezone

import pytest

from farebox.clocks import service as clocks
from farebox.events import due
from farebox.kernel.access import SYSTEM
from farebox.kernel.reasons import DomainError
from farebox.subscriptions.services import subscriptions

from factories import make_tenant


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


SEEN: list = []


@due.handler("test_probe")
def _probe(uow, item, now):
    SEEN.append((item["tenant_id"], item["payload"]["n"], now))
    return "probed"


def test_G2_tenant_on_a_test_clock_lives_in_clock_time(fb):
    clock = clocks.create(fb, SYSTEM, name="q1", start=utc(2027, 1, 31, 12))
    make_tenant(fb, tenant_id="acme")
    clocks.attach(fb, SYSTEM, clock["id"], "acme")
    with fb.uow(readonly=True) as uow:
        assert clocks.now_for(uow, fb.clock, "acme") == utc(2027, 1, 31, 12)


def test_G2_monthly_periods_roll_in_order_with_month_end_clamping(fb):
    clock = clocks.create(fb, SYSTEM, name="year", start=utc(2027, 1, 31, 12))
    make_tenant(fb, tenant_id="acme")
    clocks.attach(fb, SYSTEM, clock["id"], "acme")
    subscriptions.subscribe(fb, SYSTEM, "acme", catalog="agent-sessions", plan="sme")
    report = clocks.advance(fb, SYSTEM, clock["id"], by=timedelta(days=100))
    assert [p.due_at for p in report.processed] == [utc(2027, 2, 28, 12), utc(2027, 3, 31, 12), utc(2027, 4, 30, 12)]
    assert report.to_at == utc(2027, 5, 11, 12)
    sub = subscriptions.current(fb, SYSTEM, "acme")
    assert (sub.period.start, sub.period.end) == (utc(2027, 4, 30, 12), utc(2027, 5, 31, 12))


def test_G2_items_of_several_tenants_run_in_due_order_each_at_its_own_time(fb):
    seen = SEEN
    seen.clear()
    clock = clocks.create(fb, SYSTEM, name="c", start=utc(2026, 1, 1))
    for tenant in ("a", "b"):
        make_tenant(fb, tenant_id=tenant)
        clocks.attach(fb, SYSTEM, clock["id"], tenant)
    with fb.uow() as uow:
        for tenant, n, hours in (("a", 1, 30), ("b", 2, 10), ("a", 3, 20), ("b", 4, 50)):
            due.schedule(
                uow,
                tenant_id=tenant,
                kind="test_probe",
                ref=f"r{n}",
                due_at=utc(2026, 1, 1) + timedelta(hours=hours),
                now=utc(2026, 1, 1),
                payload={"n": n},
            )
        uow.commit()
    clocks.advance(fb, SYSTEM, clock["id"], by=timedelta(hours=40))
    assert seen == [("b", 2, utc(2026, 1, 1, 10)), ("a", 3, utc(2026, 1, 1, 20)), ("a", 1, utc(2026, 1, 2, 6))]
    clocks.advance(fb, SYSTEM, clock["id"], by=timedelta(hours=40))  # nothing runs twice
    assert [n for _, n, _ in seen] == [2, 3, 1, 4]


def test_G2_a_test_clock_never_goes_back(fb):
    clock = clocks.create(fb, SYSTEM, name="c", start=utc(2026, 6, 1))
    with pytest.raises(DomainError) as info:
        clocks.advance(fb, SYSTEM, clock["id"], to=utc(2026, 5, 1))
    assert info.value.code == "clock_backwards"


def test_real_time_worker_leaves_test_clock_tenants_alone(fb):
    clock = clocks.create(fb, SYSTEM, name="c", start=utc(2026, 1, 5, 9))
    make_tenant(fb, tenant_id="onclock")
    clocks.attach(fb, SYSTEM, clock["id"], "onclock")
    subscriptions.subscribe(fb, SYSTEM, "onclock", catalog="agent-sessions", plan="sme")
    make_tenant(fb, tenant_id="real", catalog="agent-sessions", plan="sme")
    fb.clock.advance(timedelta(days=40))
    processed = due.run_due(fb)
    assert [(p.tenant_id, p.kind) for p in processed] == [("real", "period_end")]
