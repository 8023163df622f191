"""Random lifecycles against a small reference model (issue 3, G2 G7 G8 G9 L9 L10).

Hypothesis drives subscribe / change (now, at period end, on a date) / cancel
scheduled change / cancel / reactivate / payment fails / payment settles /
advance the test clock, on the session-caps catalog (monthly plans, a free
fallback), and after every step compares the stored lifecycle with the model:
status, plan, period end, upcoming change, grace, and what admission says.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from farebox.clocks import service as clocks
from farebox.events import signals
from farebox.events.signals import Signal
from farebox.kernel.access import SYSTEM
from farebox.kernel.periods import period_at, utc
from farebox.kernel.reasons import DomainError
from farebox.subscriptions import db as repo
from farebox.subscriptions.domain.states import LIVE_STATUSES, Status, admission_refusal
from farebox.subscriptions.services import subscriptions

from factories import make_tenant

T0 = utc(2026, 1, 31, 12)  # a month-end anchor exercises clamping (G2)
TIER = {"free": 0, "pro": 1, "pro_plus": 2}
_ids = itertools.count()


@dataclass(frozen=True)
class Model:
    status: Status | None = None
    plan: str | None = None
    anchor: datetime | None = None
    period_end: datetime | None = None
    cancel_at: datetime | None = None
    upcoming: tuple[str, datetime] | None = None
    grace_end: datetime | None = None
    invoice: str | None = None

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES


def start(plan: str, at: datetime, anchor: datetime | None = None, **kw) -> Model:
    anchor = anchor or at
    return Model(
        status=Status.FREE if plan == "free" else Status.ACTIVE, plan=plan, anchor=anchor,
        period_end=period_at(anchor, "month", at).end, **kw,
    )


class Lifecycle(RuleBasedStateMachine):
    def __init__(self, fb) -> None:
        super().__init__()
        self.fb = fb
        self.tenant = f"hyp{next(_ids)}"
        self.clock = clocks.create(fb, SYSTEM, name=self.tenant, start=T0)["id"]
        make_tenant(fb, tenant_id=self.tenant)
        clocks.attach(fb, SYSTEM, self.clock, self.tenant)
        self.now = T0
        self.model = Model()

    # --- the reference model's clock ---------------------------------------------
    def _model_advance(self, to: datetime) -> None:
        m = self.model
        while True:
            events = []
            if m.upcoming and m.upcoming[1] <= to:
                events.append((m.upcoming[1], 0, "start"))
            if m.cancel_at and m.cancel_at <= to:
                events.append((m.cancel_at, 1, "cancel"))
            if m.live and m.period_end <= to:
                events.append((m.period_end, 2, "renew"))
            if not events:
                break
            at, _, kind = min(events)
            if kind == "start":
                plan, starts = m.upcoming
                anchor = m.anchor if starts == m.period_end else starts
                m = start(plan, starts, anchor, grace_end=m.grace_end, invoice=m.invoice)
                if m.grace_end is not None:
                    m = replace(m, status=Status.PAYMENT_ISSUE)
            elif kind == "cancel":
                m = start("free", at)
            else:
                m = replace(m, period_end=period_at(m.anchor, "month", at).end)
        self.model = m

    # --- rules ---------------------------------------------------------------------
    @rule(plan=st.sampled_from(list(TIER)))
    def subscribe(self, plan):
        try:
            subscriptions.subscribe(self.fb, SYSTEM, self.tenant, catalog="session-caps", plan=plan)
        except DomainError as exc:
            assert self.model.live and exc.code == "conflict"
            return
        assert not self.model.live
        self.model = start(plan, self.now)

    @rule(plan=st.sampled_from(list(TIER)), when=st.sampled_from([None, "immediately", "end_of_period", 3, 45]))
    def change(self, plan, when):
        m = self.model
        at = self.now + timedelta(days=when) if isinstance(when, int) else when
        try:
            subscriptions.change_plan(self.fb, SYSTEM, self.tenant, plan=plan, catalog="session-caps", when=at)
        except DomainError as exc:
            expected = {
                Status.CANCELLATION_SCHEDULED: "invalid_transition",
            }.get(m.status) or ("same_plan" if plan == m.plan else "invalid_transition")
            assert m.live and exc.code == expected, (exc.code, m)
            return
        if not m.live:
            self.model = start(plan, self.now)
            return
        assert plan != m.plan and m.status is not Status.CANCELLATION_SCHEDULED
        upgrade = TIER[plan] > TIER[m.plan]
        when = at if at is not None else ("immediately" if upgrade else "end_of_period")
        if when == "immediately":
            assert m.status is not Status.PAYMENT_ISSUE
            anchor = m.anchor if m.plan != "free" else self.now
            self.model = start(plan, self.now, anchor)
        else:
            starts = m.period_end if when == "end_of_period" else when
            self.model = replace(m, upcoming=(plan, starts))

    @rule()
    def cancel_scheduled_change(self):
        try:
            subscriptions.cancel_scheduled_change(self.fb, SYSTEM, self.tenant)
        except DomainError as exc:
            assert self.model.upcoming is None and exc.code == "no_scheduled_change"
            return
        self.model = replace(self.model, upcoming=None)

    @rule()
    def cancel(self):
        m = self.model
        try:
            subscriptions.cancel(self.fb, SYSTEM, self.tenant)
        except DomainError as exc:
            assert m.status not in (Status.ACTIVE, Status.PAYMENT_ISSUE), (exc.code, m)
            return
        assert m.status in (Status.ACTIVE, Status.PAYMENT_ISSUE)
        self.model = replace(m, status=Status.CANCELLATION_SCHEDULED, cancel_at=m.period_end, upcoming=None)

    @rule()
    def reactivate(self):
        m = self.model
        try:
            subscriptions.reactivate(self.fb, SYSTEM, self.tenant)
        except DomainError:
            assert m.status is not Status.CANCELLATION_SCHEDULED
            return
        self.model = replace(m, status=Status.PAYMENT_ISSUE if m.grace_end else Status.ACTIVE, cancel_at=None)

    def _publish(self, kind: str, subject: str, **data) -> None:
        with self.fb.uow() as uow:
            signals.publish(uow, Signal(kind=kind, tenant_id=self.tenant, at=self.now, subject=subject, data=data))
            uow.commit()

    @rule()
    def payment_fails(self):
        current = self._current()
        if current is None:
            return
        invoice = f"inv{next(_ids)}"
        self._publish("invoice.payment_failed", invoice, subscription_id=current.id, renewal=True, reason="declined")
        m = self.model
        if m.status in (Status.ACTIVE, Status.CANCELLATION_SCHEDULED) and m.grace_end is None:
            status = Status.PAYMENT_ISSUE if m.status is Status.ACTIVE else m.status
            self.model = replace(m, status=status, grace_end=self.now + timedelta(days=7), invoice=invoice)

    @rule()
    def payment_settles(self):
        m = self.model
        current = self._current()
        if current is None or m.invoice is None:
            return
        self._publish("invoice.paid", m.invoice, subscription_id=current.id)
        status = Status.ACTIVE if m.status is Status.PAYMENT_ISSUE else m.status
        self.model = replace(m, status=status, grace_end=None, invoice=None)

    @rule(days=st.integers(0, 40), hours=st.sampled_from([0, 1, 12]))
    def advance(self, days, hours):
        to = self.now + timedelta(days=days, hours=hours)
        clocks.advance(self.fb, SYSTEM, self.clock, to=to)
        self._model_advance(to)
        self.now = to

    # --- comparison -------------------------------------------------------------------
    def _current(self):
        with self.fb.uow(readonly=True) as uow:
            return repo.current(uow.conn, self.tenant)

    @invariant()
    def agrees_with_the_model(self):
        m = self.model
        with self.fb.uow(readonly=True) as uow:
            current = repo.current(uow.conn, self.tenant)
            upcoming = repo.upcoming(uow.conn, self.tenant)
            rows = repo.all_for_tenant(uow.conn, self.tenant)
        assert sum(r.is_live for r in rows) <= 1
        assert sum(r.status is Status.UPCOMING for r in rows) <= 1
        if m.status is None:
            assert current is None
            return
        assert (current.status, current.plan.code, current.period.end) == (m.status, m.plan, m.period_end), (current, m)
        assert (current.grace_ends_at, current.cancel_effective_at) == (m.grace_end, m.cancel_at)
        assert ((upcoming.plan.code, upcoming.starts_at) if upcoming else None) == m.upcoming
        overdue = m.grace_end is not None and self.now >= m.grace_end
        reason = admission_refusal(current, self.now)
        assert (reason.code if reason else None) == ("payment_overdue" if overdue else None)


def test_random_lifecycles_agree_with_the_reference_model(fb):
    run_state_machine_as_test(
        lambda: Lifecycle(fb),
        settings=settings(
            max_examples=40, stateful_step_count=25, deadline=None, suppress_health_check=list(HealthCheck)
        ),
    )
