"""Running a scenario: a fresh embedded database, a test clock, one step at a time.

Each step calls the same service functions the API and the portal call, as
the operator (or as the tenant's owner where the rule is about the tenant's
own actions), and returns the answer as a flat mapping.  A step's `expect`
is compared key by key with that answer; a mismatch is a `Failure` with the
step's line and the actual answer.  A step that raises a refusal answers
`{"ok": False, "reason": code, "message": ...}`, so refusals can be expected
too.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from farebox.adapters.db.engine import make_engine
from farebox.adapters.db.migrate import upgrade
from farebox.bootstrap import Farebox
from farebox.domain.access import SYSTEM, Principal, Role
from farebox.domain.clock import FrozenClock
from farebox.domain.periods import parse_duration
from farebox.domain.reasons import DomainError
from farebox.scenarios.document import Scenario, ScenarioError, Step, parse_file
from farebox.services import catalog as catalog_service
from farebox.services import clocks, tenants
from farebox.settings import Settings

Answer = dict[str, Any]


@dataclass
class Context:
    fb: Farebox
    scenario: Scenario
    clock_id: str
    catalog: str
    tenants: set[str] = field(default_factory=set)

    def now(self) -> datetime:
        return self.fb.clock.now()

    def owner(self, tenant_id: str) -> Principal:
        return Principal(Role.OWNER, tenant_id=tenant_id, email=f"owner@{tenant_id}.example", key_id="scenario")

    def tenant(self, args: dict[str, Any], step: Step) -> str:
        tenant_id = args.get("tenant")
        if tenant_id not in self.tenants:
            raise ScenarioError(self.scenario.source, step.line, f"unknown tenant {tenant_id!r}; create it first with `- tenant: NAME`")
        return tenant_id


GOOD_CARD = "4242424242424242"  # the sandbox's card that always pays
StepFn = Callable[[Context, Step], Answer]
STEPS: dict[str, StepFn] = {}


def step(name: str) -> Callable[[StepFn], StepFn]:
    def register(fn: StepFn) -> StepFn:
        STEPS[name] = fn
        return fn

    return register


@dataclass(frozen=True)
class Failure:
    source: str
    line: int
    action: str
    expected: dict[str, Any]
    actual: Answer

    def __str__(self) -> str:
        wrong = {k: v for k, v in self.expected.items() if _normal(self.actual.get(k, _MISSING)) != _normal(v)}
        parts = ", ".join(f"{k}: expected {v!r}, got {self.actual.get(k, '(absent)')!r}" for k, v in wrong.items())
        return f"{self.source}:{self.line}: {self.action}: {parts}\n    actual answer: {self.actual}"


@dataclass
class Result:
    scenario: Scenario
    steps_run: int = 0
    failures: list[Failure] = field(default_factory=list)
    log: list[tuple[Step, Answer]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


_MISSING = object()


def _normal(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return value


def matches(expected: dict[str, Any], actual: Answer) -> bool:
    return all(_normal(actual.get(k, _MISSING)) == _normal(v) for k, v in expected.items())


def fresh_box(directory: Path, start: datetime) -> Farebox:
    url = f"sqlite:///{directory / 'scenario.db'}"
    engine = make_engine(url)
    upgrade(engine)
    return Farebox(engine=engine, clock=FrozenClock(start), settings=Settings(database_url=url, operator_key=None))


def run(scenario: Scenario, *, on_step: Callable[[Step, Answer, bool], None] | None = None) -> Result:
    """Run one scenario on its own fresh database; every step runs even after a failure."""
    result = Result(scenario)
    with tempfile.TemporaryDirectory(prefix="farebox-scenario-") as tmp:
        fb = fresh_box(Path(tmp), scenario.start)
        try:
            if Path(scenario.catalog).suffix in (".yaml", ".yml"):
                path = Path(scenario.catalog)
                if not path.is_absolute():
                    path = Path(scenario.source).parent / path
                report = catalog_service.load(fb, SYSTEM, str(path))
            else:
                report = catalog_service.load_bundled(fb, SYSTEM, scenario.catalog)
            clock = clocks.create(fb, SYSTEM, name=f"scenario {Path(scenario.source).name}", start=scenario.start)
            ctx = Context(fb, scenario, clock["id"], report.catalog)
            for s in scenario.steps:
                fn = STEPS.get(s.action)
                if fn is None:  # parse() checked the verbs; this is a programming error
                    raise ScenarioError(scenario.source, s.line, f"no runner for step {s.action!r}")
                try:
                    answer = fn(ctx, s)
                except DomainError as exc:
                    answer = {"ok": False, "reason": exc.code, "message": exc.refusal.message}
                result.steps_run += 1
                result.log.append((s, answer))
                ok = matches(s.expect, answer)
                if not ok:
                    result.failures.append(Failure(scenario.source, s.line, s.action, s.expect, answer))
                if on_step is not None:
                    on_step(s, answer, ok)
        finally:
            fb.engine.dispose()
    return result


def run_file(path: str | Path, **kwargs: Any) -> Result:
    return run(parse_file(path, verbs=frozenset(STEPS)), **kwargs)


# --- steps ------------------------------------------------------------------


def _sync_clock(ctx: Context) -> None:
    ctx.fb.clock.set(clocks.get(ctx.fb, SYSTEM, ctx.clock_id)["now_at"])  # type: ignore[attr-defined]


@step("tenant")
def _tenant(ctx: Context, s: Step) -> Answer:
    """`- tenant: acme` (+ `plan: pro`, `trial: true`, `card: 4000000000000341` or `card: none`): a tenant
    with an owner on the scenario's clock, a sandbox card (by default one that always pays), subscribed."""
    from farebox.services import payments

    tenant_id = str(s.args["value"])
    tenants.create_tenant(ctx.fb, SYSTEM, tenant_id=tenant_id, name=tenant_id, owner_email=f"owner@{tenant_id}.example")
    clocks.attach(ctx.fb, SYSTEM, ctx.clock_id, tenant_id)
    ctx.tenants.add(tenant_id)
    card = str(s.extra.get("card", GOOD_CARD))
    if card.lower() != "none":
        payments.add_payment_method(ctx.fb, ctx.owner(tenant_id), tenant_id, token=card)
    answer: Answer = {"ok": True, "tenant": tenant_id}
    if "plan" in s.extra:
        answer.update(subscribe(ctx, tenant_id, str(s.extra["plan"]), trial=bool(s.extra.get("trial", False))))
    return answer


def subscribe(ctx: Context, tenant_id: str, plan: str, *, trial: bool) -> Answer:
    from farebox.services import subscriptions

    kwargs = {"trial": True} if trial else {}
    sub = subscriptions.subscribe(ctx.fb, ctx.owner(tenant_id), tenant_id, catalog=ctx.catalog, plan=plan, **kwargs)
    return {"ok": True, "status": str(sub.status), "plan": sub.plan.code}


@step("advance")
def _advance(ctx: Context, s: Step) -> Answer:
    """`- advance: 36h` (s, m, h, d)."""
    report = clocks.advance(ctx.fb, SYSTEM, ctx.clock_id, by=parse_duration(str(s.args["value"])))
    _sync_clock(ctx)
    return {"ok": True, "now": report.to_at.isoformat(), "processed": [f"{p.kind}: {p.outcome}" for p in report.processed]}


@step("at")
def _at(ctx: Context, s: Step) -> Answer:
    """`- at: 2026-02-01T00:00:00Z`: advance the clock to this instant."""
    value = s.args["value"]
    target = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    report = clocks.advance(ctx.fb, SYSTEM, ctx.clock_id, to=target)
    _sync_clock(ctx)
    return {"ok": True, "now": report.to_at.isoformat(), "processed": [f"{p.kind}: {p.outcome}" for p in report.processed]}
