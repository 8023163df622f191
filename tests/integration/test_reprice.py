"""Repricing a tenant's recorded history under another catalog (L11), on every engine."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event

from farebox.clocks import service as clocks
from farebox.kernel.access import SYSTEM, Principal, Role
from farebox.kernel.periods import utc
from farebox.kernel.reasons import DomainError
from farebox.metering.services import admission
from farebox.repricing import service as reprice
from farebox.subscriptions.services import subscriptions

from factories import make_tenant

AGENTS_V2 = """\
name: agents-v2
title: Agent sessions, cheaper with a hard cap
currency: EUR
free_plan: null
meters:
  conversations: {kind: billable_sessions, scope: period, unit: session, window: 24h}
plans:
  starter:
    name: Starter
    price: "100.00"
    interval: month
    limits:
      conversations: {included: 2, policy: hard}
  sme:
    name: SME
    price: "120.00"
    interval: month
    limits:
      conversations: {included: 3, policy: hard}
"""


def _on_clock(fb, tenant_id: str, *, catalog: str, plan: str) -> str:
    clock = clocks.create(fb, SYSTEM, name=tenant_id, start=utc(2026, 1, 5, 9))
    make_tenant(fb, tenant_id=tenant_id)
    clocks.attach(fb, SYSTEM, clock["id"], tenant_id)
    subscriptions.subscribe(fb, SYSTEM, tenant_id, catalog=catalog, plan=plan, cause="test")
    return clock["id"]


def _conversations(fb, tenant_id: str, n: int, prefix: str) -> None:
    for i in range(n):
        assert admission.message(fb, SYSTEM, tenant_id, f"{prefix}{i}", sender="customer").counted


def test_L11_a_tenant_replayed_period_by_period_invoiced_vs_would_pay_and_the_refusals(fb, tmp_path):
    clock = _on_clock(fb, "agents", catalog="agent-sessions", plan="sme")
    _conversations(fb, "agents", 5, "jan")  # 5 billable sessions in the first period
    clocks.advance(fb, SYSTEM, clock, to=utc(2026, 2, 10, 9))
    _conversations(fb, "agents", 2, "feb")
    clocks.advance(fb, SYSTEM, clock, to=utc(2026, 3, 1, 9))
    catalog_file = tmp_path / "agents-v2.yaml"
    catalog_file.write_text(AGENTS_V2)

    item = reprice.reprice_tenant(fb, SYSTEM, "agents", catalog=str(catalog_file))
    r = item.result
    assert (item.from_catalog, item.from_plan, r.plan.code, r.currency) == ("agent-sessions", "sme", "sme", "EUR")
    assert [(p.period.start, p.complete) for p in r.periods] == [
        (utc(2026, 1, 5, 9), True),
        (utc(2026, 2, 5, 9), False),
    ]
    first, second = r.periods
    assert dict(first.paid) == {"EUR": 15000} and dict(second.paid) == {
        "EUR": 15000
    }  # SME's fee, in advance, each period
    assert first.usage == {"conversations": 5} and second.usage == {"conversations": 2}
    assert (first.would_pay_minor, second.would_pay_minor) == (12000, 12000)
    (hit,) = first.hits
    assert (hit.meter, hit.included, hit.reached, hit.refused) == ("conversations", 3, 5, 2)
    assert not second.hits and r.change_minor == 24000 - 30000

    chosen = reprice.reprice_tenant(
        fb, SYSTEM, "agents", catalog=str(catalog_file), plan="starter", since=utc(2026, 2, 6)
    )
    assert [p.period.start for p in chosen.result.periods] == [utc(2026, 2, 5, 9)]
    assert chosen.result.periods[0].hits == ()  # 2 sessions: within the Starter's 2


def test_L11_attendees_recorded_under_caps_are_credits_under_the_credit_catalog(fb):
    clock = _on_clock(fb, "webinars", catalog="session-caps", plan="pro")
    for person in ("p1", "p2", "p3"):
        assert admission.join(fb, SYSTEM, "webinars", "o1", person).counted
    assert not admission.join(fb, SYSTEM, "webinars", "o1", "p1").counted  # a rejoin is one attendee (L2)
    clocks.advance(fb, SYSTEM, clock, by=timedelta(days=40))
    assert admission.join(fb, SYSTEM, "webinars", "o2", "p1").counted

    r = reprice.reprice_tenant(fb, SYSTEM, "webinars", catalog="attendee-credits").result
    assert r.plan.code == "pro" and r.plan.interval.value == "year"
    (year,) = r.periods
    assert year.usage == {"credits": 4}  # 3 + 1 unique attendees per occurrence
    assert dict(year.paid) == {"USD": 2 * 2900} and year.would_pay_minor == 118800 and r.change_minor == 118800 - 5800


def test_L11_repricing_every_tenant_sums_up_with_a_constant_number_of_statements(fb, tmp_path):
    catalog_file = tmp_path / "agents-v2.yaml"
    catalog_file.write_text(AGENTS_V2)
    _on_clock(fb, "a1", catalog="agent-sessions", plan="sme")
    _conversations(fb, "a1", 4, "c")
    make_tenant(fb, tenant_id="nobody")  # never subscribed: nothing to replay

    def statements(**kwargs) -> tuple[int, reprice.RepriceSummary]:
        seen: list[str] = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        event.listen(fb.engine, "before_cursor_execute", listener)
        try:
            summary = reprice.reprice_all(fb, SYSTEM, catalog=str(catalog_file), **kwargs)
        finally:
            event.remove(fb.engine, "before_cursor_execute", listener)
        return len([s for s in seen if s.lstrip().upper().startswith("SELECT")]), summary

    few, summary = statements()
    assert (summary.tenants, summary.without_history) == (2, 1)
    assert summary.paid == {"EUR": 15000} and summary.would_pay == {"EUR": 12000} and summary.change("EUR") == -3000
    assert summary.paying_less == 1
    (limited,) = summary.hitting_limits
    assert (limited.tenant_id, limited.plan, limited.periods, limited.refused) == ("a1", "sme", 1, 1)
    for i in range(6):
        _on_clock(fb, f"b{i}", catalog="agent-sessions", plan="sme")
        _conversations(fb, f"b{i}", 1 + i, "c")
    many, summary = statements()
    assert summary.tenants == 8 and [t.tenant_id for t in summary.hitting_limits] == [
        "a1",
        "b3",
        "b4",
        "b5",
    ]  # over 3 sessions
    assert many == few  # one statement per table per batch, not one per tenant or period


def test_L11_only_the_operator_reprices_and_unknown_catalogs_and_plans_are_refused(fb, tmp_path):
    make_tenant(fb, tenant_id="acme", catalog="session-caps", plan="pro")
    with pytest.raises(DomainError) as refused:
        reprice.reprice_tenant(
            fb, Principal(Role.OWNER, tenant_id="acme", key_id="k"), "acme", catalog="attendee-credits"
        )
    assert refused.value.code == "forbidden"
    with pytest.raises(DomainError) as missing:
        reprice.reprice_tenant(fb, SYSTEM, "acme", catalog="no-such-catalog")
    assert missing.value.code == "catalog_not_found"
    broken = tmp_path / "broken.yaml"
    broken.write_text(AGENTS_V2.replace("policy: hard}", "policy: sometimes}"))
    with pytest.raises(DomainError) as invalid:
        reprice.reprice_tenant(fb, SYSTEM, "acme", catalog=str(broken))
    assert invalid.value.code == "catalog_invalid" and "limits.conversations.policy" in invalid.value.refusal.message
    with pytest.raises(DomainError) as plan:
        reprice.reprice_tenant(fb, SYSTEM, "acme", catalog="attendee-credits", plan="gold")
    assert plan.value.code == "plan_not_found"
