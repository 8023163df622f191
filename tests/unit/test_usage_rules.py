"""The usage rules of the service layer (A3, A6, L4, L8, S5) against in-memory repositories (tests/fakes.py):
no database, microseconds per check.  The same functions run on SQLite and PostgreSQL in tests/integration."""

from __future__ import annotations

import time
from datetime import timedelta

from farebox.catalog.files import load_catalog
from farebox.kernel.periods import period_at, utc
from farebox.metering.domain.pools import ALMOST_REACHED, REACHED
from farebox.metering.services.usage import overage_usage, summaries_of, summary_of
from farebox.subscriptions.domain.states import Status, Subscription

from fakes import FakeMeteringRepository, FakeSubscriptionRepository

NOW = utc(2026, 1, 5, 9)
AGENTS = load_catalog("agent-sessions")[0]
CAPS = load_catalog("session-caps")[0]
CREDITS = load_catalog("attendee-credits")[0]
CATALOGS = {1: AGENTS, 2: CAPS, 3: CREDITS}


def subscription(catalog, plan: str, *, tenant_id: str = "t", status: Status = Status.ACTIVE, **kw) -> Subscription:
    version = next(v for v, c in CATALOGS.items() if c is catalog)
    chosen = catalog.plan(plan)
    return Subscription(
        tenant_id=tenant_id, id=f"sub_{tenant_id}", plan=chosen, plan_version_id=version, catalog=catalog.name,
        status=status, anchor_at=NOW, period=period_at(NOW, chosen.interval, NOW), starts_at=NOW, **kw,
    )


def repos(*subs: Subscription) -> tuple[FakeSubscriptionRepository, FakeMeteringRepository]:
    return FakeSubscriptionRepository(*subs), FakeMeteringRepository({v: c.meters for v, c in CATALOGS.items()})


def test_A6_the_tenants_own_limit_is_what_usage_is_measured_against_with_warnings_at_80_and_100_percent():
    sme = subscription(AGENTS, "sme")
    subs, metering = repos(sme)
    metering.limits["t"] = 10
    seen = []
    for used in (7, 8, 10):
        metering.count(sme, "sessions", used)
        m = summary_of(subs, metering, "t").meter("sessions")
        seen.append((m.limit, m.left, m.percent, m.session_limit, m.warnings))
    assert seen == [(10, 3, 70, 10, ()), (10, 2, 80, 10, (ALMOST_REACHED,)), (10, 0, 100, 10, (REACHED,))]


def test_A3_A6_during_a_trial_the_trials_bound_is_in_force_and_no_own_limit_applies():
    trial = subscription(AGENTS, "sme", status=Status.TRIALING, trial_ends_at=NOW + timedelta(days=14))
    subs, metering = repos(trial)
    metering.limits["t"] = 10
    metering.count(trial, "sessions", 45)
    m = summary_of(subs, metering, "t").meter("sessions")
    assert (m.included, m.limit, m.left, m.customer_limit_allowed, m.session_limit) == (50, 50, 5, False, None)


def test_L4_credits_carried_forward_add_to_what_the_period_includes():
    pro = subscription(CREDITS, "pro")
    subs, metering = repos(pro)
    metering.count(pro, "credits", 1205, carried_in=7)
    m = summary_of(subs, metering, "t").meter("credits")
    assert (m.included, m.limit, m.left, m.carried_in, m.overage) == (1207, 1207, 2, 7, 0)


def test_L8_A8_overage_is_what_exceeds_the_included_units_billed_in_arrears():
    sme = subscription(AGENTS, "sme")
    subs, metering = repos(sme)
    metering.count(sme, "sessions", 643)
    assert summary_of(subs, metering, "t").meter("sessions").overage == 43
    assert overage_usage(subs, metering, "t", sme.id, sme.period.start, sme.period.end) == {"sessions": 43}
    later = sme.period.end
    metering.count(sme, "sessions", 610, period_start=later)  # the next period counts on its own
    assert overage_usage(subs, metering, "t", sme.id, sme.period.start, later + timedelta(days=31)) == {"sessions": 53}


def test_S5_an_occurrence_cap_is_per_event_not_a_period_pool():
    pro = subscription(CAPS, "pro")
    subs, metering = repos(pro)
    attendees = summary_of(subs, metering, "t").meter("attendees")
    assert (attendees.scope, attendees.included, attendees.limit, attendees.left, attendees.percent) == (
        "occurrence", 500, 500, None, None,
    )


def test_a_tenant_without_a_subscription_has_an_empty_summary_and_many_are_summarised_alike():
    a, b = subscription(AGENTS, "sme", tenant_id="a"), subscription(CREDITS, "pro", tenant_id="b")
    subs, metering = repos(a, b)
    metering.count(a, "sessions", 3)
    metering.count(b, "credits", 9)
    assert summary_of(subs, metering, "nobody").meters == []
    many = summaries_of(metering, subs.current_of_many(["a", "b", "nobody"]), ["a", "b", "nobody"])
    assert many == {t: summary_of(subs, metering, t) for t in ("a", "b", "nobody")}


def test_a_rule_check_on_the_fakes_takes_microseconds():
    """The point of the ports: 1,000 summaries without a database in well under a second (about 36 µs each on the
    shared 2-core machine)."""
    sme = subscription(AGENTS, "sme")
    subs, metering = repos(sme)
    metering.count(sme, "sessions", 480)
    started = time.perf_counter()
    for _ in range(1000):
        summary_of(subs, metering, "t")
    assert time.perf_counter() - started < 1.0
