"""`farebox demo`: a narrated walk-through of the three bundled catalogs on a test clock.

A fresh embedded database (a temporary SQLite file unless a path is given),
one test clock, a tenant of each catalog, and four stories told through the
real services (admission, subscriptions, clocks, usage, notifications,
invoices, payments with the sandbox provider's test cards):

1. `session-caps`: a webinar goes over its Pro cap of 500 (S5, soft): nobody
   is blocked, the host is told, the next start needs an upgrade.
2. `attendee-credits`: one credit pool (L3) runs out across four webinars; a
   returning attendee is still let in and counts nothing (L2, L7).
3. `agent-sessions`: a trial ends on its 50th billable session (A3).
4. `agent-sessions`: a renewal's payment fails on a declining card, grace runs
   (service continues), then admissions are refused with G9's message (A7).

Each chapter is returned as data (`Chapter`); the CLI renders it with Rich.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from farebox.alerts.services import notifications
from farebox.bootstrap import Farebox
from farebox.clocks import service as clocks
from farebox.demo import data as demo
from farebox.invoicing.services import invoices
from farebox.kernel.access import SYSTEM, Principal, Role
from farebox.kernel.clock import FrozenClock
from farebox.kernel.periods import utc
from farebox.metering.domain.admission import Decision
from farebox.metering.services import admission, usage
from farebox.payments import service as payments
from farebox.payments.providers.sandbox import FAILS_LATER, SUCCEEDS, SandboxProvider
from farebox.settings import Settings
from farebox.storage.engine import make_engine
from farebox.storage.migrate import upgrade
from farebox.subscriptions.services import subscriptions
from farebox.tenants.services import tenants

START = utc(2026, 1, 5, 9)


@dataclass(frozen=True)
class Step:
    """One request (or a run of identical answers) and what farebox answered."""

    what: str
    admitted: bool | None  # None: not an admission (a plan change, the clock)
    counted: bool | None
    answer: str


@dataclass
class Chapter:
    title: str
    tenant_id: str
    narration: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    badge: str = ""
    usage: list[tuple[str, str, str]] = field(default_factory=list)  # meter, used, of what
    alerts: list[tuple[str, str, str]] = field(default_factory=list)  # when, kind, title
    invoices: list[tuple[str, str, str, str, str]] = field(default_factory=list)  # number, issued, kind, total, status


@dataclass
class Walkthrough:
    database_url: str
    chapters: list[Chapter] = field(default_factory=list)


class _Story:
    """The running demo: its services container, clock and the chapter being told."""

    def __init__(
        self, fb: Farebox, clock: FrozenClock, clock_id: str, on_chapter: Callable[[Chapter], None] | None
    ) -> None:
        self.fb, self.clock, self.clock_id, self.on_chapter = fb, clock, clock_id, on_chapter
        self.chapter: Chapter | None = None
        self.done: list[Chapter] = []

    # -- telling ------------------------------------------------------------------
    def begin(self, title: str, tenant_id: str, *narration: str) -> None:
        self.chapter = Chapter(title, tenant_id, list(narration))

    def note(self, what: str, answer: str) -> None:
        assert self.chapter is not None
        self.chapter.steps.append(Step(what, None, None, answer))

    def answer(self, what: str, decision: Decision) -> Decision:
        assert self.chapter is not None
        text = f"{decision.reason}: {decision.message}" + "".join(f" (warning: {w})" for w in decision.warnings)
        self.chapter.steps.append(Step(what, decision.admitted, decision.counted, text))
        return decision

    def answers(self, what: str, decisions: list[Decision]) -> None:
        """A run of requests, one row per stretch of identical answers."""
        i = 0
        while i < len(decisions):
            j = i
            while j + 1 < len(decisions) and _same(decisions[j + 1], decisions[i]):
                j += 1
            label = f"{what} #{i + 1}" if i == j else f"{what} #{i + 1}-#{j + 1} ({j - i + 1} requests)"
            self.answer(label, decisions[j])
            i = j + 1

    def end(self) -> None:
        chapter = self.chapter
        assert chapter is not None
        owner = self.owner(chapter.tenant_id)
        cards = subscriptions.cards(self.fb, owner, chapter.tenant_id)
        card = cards.subscription
        chapter.badge = (
            f"{card.badge}: {card.plan_name} ({card.catalog}), {card.price} a {card.interval}"
            if card
            else "no subscription"
        )
        for m in usage.usage_summary(self.fb, owner, chapter.tenant_id).meters:
            of = (
                f"of {m.included} per occurrence"
                if m.scope == "occurrence"
                else (f"of {m.included}, {m.left} left" if m.included is not None else "unlimited")
            )
            chapter.usage.append((f"{m.meter} ({m.unit})", str(m.used), of))
        for n in reversed(notifications.list_notifications(self.fb, owner, chapter.tenant_id, limit=100).items):
            chapter.alerts.append((f"{n.created_at:%Y-%m-%d %H:%M}", n.kind, n.title))
        for inv in reversed(invoices.list_invoices(self.fb, owner, chapter.tenant_id)):
            chapter.invoices.append(
                (inv.number or "-", f"{inv.issued_at:%Y-%m-%d}", inv.kind, inv.total.format(), inv.status)
            )
        self.done.append(chapter)
        if self.on_chapter is not None:
            self.on_chapter(chapter)
        self.chapter = None

    # -- acting ---------------------------------------------------------------------
    def owner(self, tenant_id: str) -> Principal:
        return Principal(Role.OWNER, tenant_id=tenant_id, email=f"owner@{tenant_id}.example", key_id="demo")

    def tenant(self, tenant_id: str, name: str) -> None:
        """A tenant with an owner, on the demo's test clock, paying with the sandbox card that always succeeds."""
        tenants.create_tenant(
            self.fb,
            SYSTEM,
            tenant_id=tenant_id,
            name=name,
            owner_email=f"owner@{tenant_id}.example",
            owner_name="Demo Owner",
        )
        clocks.attach(self.fb, SYSTEM, self.clock_id, tenant_id)
        payments.add_payment_method(self.fb, self.owner(tenant_id), tenant_id, token=SUCCEEDS)

    def advance(self, by: timedelta) -> None:
        report = clocks.advance(self.fb, SYSTEM, self.clock_id, by=by)
        self.clock.set(report.to_at)
        done = [
            f"{p.kind}: {p.outcome}"
            for p in report.processed
            if p.tenant_id == (self.chapter.tenant_id if self.chapter else None)
        ]
        self.note(
            f"advance the test clock {_days(by)} to {report.to_at:%Y-%m-%d %H:%M}",
            "; ".join(done) or "nothing fell due",
        )

    def join(
        self, tenant_id: str, occurrence: str, person: str, *, mode: str = "live", role: str = "attendee"
    ) -> Decision:
        return admission.join(self.fb, SYSTEM, tenant_id, occurrence, person, mode=mode, role=role)

    def message(self, tenant_id: str, conversation: str) -> Decision:
        return admission.message(self.fb, SYSTEM, tenant_id, conversation, sender="customer")


def _same(a: Decision, b: Decision) -> bool:
    return (a.admitted, a.counted, a.reason, a.warnings) == (b.admitted, b.counted, b.reason, b.warnings)


def _days(delta: timedelta) -> str:
    return f"{delta.days} day(s)" if delta.days else f"{int(delta.total_seconds() // 3600)} hour(s)"


def run(*, database: Path | None = None, on_chapter: Callable[[Chapter], None] | None = None) -> Walkthrough:
    """Tell the four stories on a fresh database (a temporary one unless `database` names a new SQLite file)."""
    with tempfile.TemporaryDirectory(prefix="farebox-demo-") as tmp:
        path = database or Path(tmp) / "demo.db"
        if path.exists():
            raise FileExistsError(f"{path} exists: the demo needs a fresh database")
        url = f"sqlite:///{path}"
        engine = make_engine(url)
        try:
            upgrade(engine)
            frozen = FrozenClock(START)
            settings = Settings(database_url=url, operator_key=None)
            # the demo never charges a real card, whatever FAREBOX_PAYMENT_PROVIDER says
            fb = Farebox(engine=engine, clock=frozen, settings=settings, payment_provider=SandboxProvider())
            demo.load_catalogs(fb)
            clock = clocks.create(fb, SYSTEM, name="farebox demo", start=START)
            story = _Story(fb, frozen, clock["id"], on_chapter)
            webinar_over_its_cap(story)
            credit_pool_runs_out(story)
            trial_ends_on_its_50th_session(story)
            failed_payment_through_grace(story)
        finally:
            engine.dispose()
        return Walkthrough(url if database else "(temporary, deleted)", story.done)


def webinar_over_its_cap(s: _Story) -> None:
    t = "webinars"
    s.begin("session-caps: a webinar goes over its cap (S5)", t,
            "Webinars Inc. is on Pro (session-caps): each occurrence is capped at 500 attendees, policy soft.",
            "Soft means nobody is blocked mid-event; the host is told, and the next occurrence needs an upgrade first.")
    s.tenant(t, "Webinars Inc.")
    subscriptions.subscribe(s.fb, s.owner(t), t, catalog="session-caps", plan="pro", cause="demo")
    s.answer("the host joins launch (role member)", s.join(t, "launch", "host", role="member"))
    s.answers("attendee joins launch", [s.join(t, "launch", f"a{i}") for i in range(1, 502)])
    counted = usage.usage_summary(s.fb, s.owner(t), t).meter("attendees").used
    s.note("attendees counted for launch", f"{counted}: the host is not counted (G5), nobody was turned away (S5 soft)")
    s.answer("a registration for follow-up", admission.register(s.fb, SYSTEM, t, "follow-up", "a1"))
    s.answer("start the next occurrence, follow-up", admission.start_occurrence(s.fb, SYSTEM, t, "follow-up"))
    change = subscriptions.change_plan(s.fb, s.owner(t), t, plan="pro_plus", when="immediately", cause="demo")
    s.note(
        "the owner upgrades to Pro Plus (cap 1,000) at once",
        f"{change.subscription.status.value}: prorated to the second (G7)",
    )
    s.answer("start follow-up again", admission.start_occurrence(s.fb, SYSTEM, t, "follow-up"))
    s.end()


def credit_pool_runs_out(s: _Story) -> None:
    t = "events"
    s.begin(
        "attendee-credits: a credit pool runs out (L2, L3, L7)",
        t,
        "Events GmbH is on Pro (attendee-credits): 1,200 credits a year, one pool for every event and team (L3), "
        "policy hard.",
        "A credit is one attendee entering one occurrence, whatever the mix of live, replay and on demand (L2).",
    )
    s.tenant(t, "Events GmbH")
    subscriptions.subscribe(s.fb, s.owner(t), t, catalog="attendee-credits", plan="pro", cause="demo")
    for n in range(1, 5):
        s.answers(f"attendee joins webinar-{n}", [s.join(t, f"webinar-{n}", f"w{n}-p{i}") for i in range(1, 301)])
    s.answer("a new attendee joins webinar-5", s.join(t, "webinar-5", "newcomer"))
    s.answer("w1-p1 comes back to webinar-1, on the replay", s.join(t, "webinar-1", "w1-p1", mode="replay"))
    s.answer("a registration for webinar-5", admission.register(s.fb, SYSTEM, t, "webinar-5", "newcomer"))
    s.answer("a team member joins webinar-5 (role member)", s.join(t, "webinar-5", "colleague", role="member"))
    s.end()


def trial_ends_on_its_50th_session(s: _Story) -> None:
    t = "agents"
    s.begin(
        "agent-sessions: a trial ends on its 50th session (A3)",
        t,
        "Agents SAS starts the SME trial (agent-sessions): 14 days and 50 billable sessions, whichever comes first.",
        "A billable session is a 24-hour window of one conversation (A1); each conversation here gets one customer "
        "message.",
    )
    s.tenant(t, "Agents SAS")
    subscriptions.subscribe(s.fb, s.owner(t), t, catalog="agent-sessions", plan="sme", trial=True, cause="demo")
    s.advance(timedelta(days=2))
    s.answers("a customer writes in a new conversation", [s.message(t, f"chat-{i}") for i in range(1, 51)])
    s.answer("a customer writes in chat-51", s.message(t, "chat-51"))
    s.end()


def failed_payment_through_grace(s: _Story) -> None:
    t = "agents"
    s.begin(
        "agent-sessions: a failed payment, grace, then refusal (G9, A7)",
        t,
        "Agents SAS subscribes to SME (EUR 150 a month in advance); the first invoice is paid with the sandbox card "
        "4242 4242 4242 4242.",
    )
    subscriptions.subscribe(s.fb, s.owner(t), t, catalog="agent-sessions", plan="sme", cause="demo")
    s.answer("a customer writes in chat-52", s.message(t, "chat-52"))
    payments.add_payment_method(s.fb, s.owner(t), t, token=FAILS_LATER)
    s.note(
        "the owner replaces the card with 4000 0000 0000 0341",
        "the sandbox's card that attaches but declines every charge",
    )
    s.advance(timedelta(days=31))
    card = subscriptions.cards(s.fb, s.owner(t), t).subscription
    s.note(
        "the renewal's payment is declined",
        f"badge {card.badge!r}, payment pending: {card.payment_pending}, grace ends {card.grace_ends_at:%Y-%m-%d %H:%M}"
        if card and card.grace_ends_at
        else "no grace",
    )
    s.answer("during grace, a customer writes in chat-53", s.message(t, "chat-53"))
    s.advance(timedelta(days=7))
    s.answer("after grace, a customer writes in chat-54", s.message(t, "chat-54"))
    s.end()
