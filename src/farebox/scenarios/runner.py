"""Running a scenario: a fresh embedded database, a test clock, one step at a time.

Each step (steps_*.py) calls the same service functions the API and the
portal call, as the operator or as the tenant's owner, and returns the answer
as a flat mapping.  A step's `expect` is compared key by key with that
answer; a mismatch is a `Failure` with the step's line and the actual answer.
A step that raises a refusal answers `{"ok": False, "reason": code,
"message": ...}`, so refusals can be expected too; a refused step with no
`expect` is a failure (a misspelt plan must not pass silently).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from farebox.bootstrap import Farebox
from farebox.catalog import service as catalog_service
from farebox.catalog.files import CatalogError, bundled_catalog_text
from farebox.clocks import service as clocks
from farebox.kernel.access import SYSTEM
from farebox.kernel.clock import FrozenClock
from farebox.kernel.reasons import DomainError
from farebox.scenarios import (  # noqa: F401  (register the steps)
    steps_admission,
    steps_alerts,
    steps_billing,
    steps_check,
    steps_subscription,
    steps_tenant,
)
from farebox.scenarios.context import STEPS, Answer, Context
from farebox.scenarios.document import Scenario, ScenarioError, Step, parse_file
from farebox.scenarios.steps_check import expectation as check_expectation
from farebox.settings import Settings
from farebox.storage.engine import make_engine
from farebox.storage.migrate import upgrade

__all__ = ["STEPS", "Failure", "Result", "matches", "run", "run_file"]


@dataclass(frozen=True)
class Failure:
    source: str
    line: int
    action: str
    expected: dict[str, Any]
    actual: Answer

    def __str__(self) -> str:
        if not self.expected:  # refused, and nothing said it would be
            reason = self.actual.get("reason")
            return (
                f"{self.source}:{self.line}: {self.action}: refused ({reason}) but the step has no expect;"
                f" if the refusal is meant, say so with expect: {{ok: false, reason: {reason}}}"
                f"\n    actual answer: {self.actual}"
            )
        wrong = {k: v for k, v in self.expected.items() if not _matches(v, self.actual.get(k, _MISSING))}
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


def _matches(expected: Any, actual: Any) -> bool:
    """Mappings match on the keys the expectation names; lists whole and in order; the rest by equality."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(_matches(v, actual.get(k, _MISSING)) for k, v in expected.items())
    if isinstance(expected, (list, tuple)):
        return (
            isinstance(actual, (list, tuple)) and len(expected) == len(actual) and all(map(_matches, expected, actual))
        )
    if isinstance(expected, (datetime, date)) and isinstance(actual, str):  # an unquoted YAML date-time
        return expected.isoformat() == actual
    return expected == actual


def matches(expected: dict[str, Any], actual: Answer) -> bool:
    return _matches(expected, actual)


def expectation(s: Step, source: str) -> dict[str, Any]:
    return check_expectation(s, source) if s.action == "check" else s.expect


def fresh_box(directory: Path, start: datetime) -> Farebox:
    url = f"sqlite:///{directory / 'scenario.db'}"
    engine = make_engine(url)
    upgrade(engine)
    return Farebox(engine=engine, clock=FrozenClock(start), settings=Settings(database_url=url, operator_key=None))


def _deep_merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _load_catalog(fb: Farebox, scenario: Scenario, catalog: str | dict[str, Any]) -> str:
    if isinstance(catalog, dict):  # a bundled catalog with changes: {base: NAME, plans: {pro: {...}}}
        changes = {k: v for k, v in catalog.items() if k != "base"}
        doc = _deep_merge(yaml.safe_load(bundled_catalog_text(str(catalog["base"]))), changes)
        return catalog_service.load_document(fb, SYSTEM, yaml.safe_dump(doc, sort_keys=False)).catalog
    if Path(catalog).suffix in (".yaml", ".yml"):
        path = Path(catalog)
        if not path.is_absolute():
            path = Path(scenario.source).parent / path
        return catalog_service.load(fb, SYSTEM, str(path)).catalog
    return catalog_service.load_bundled(fb, SYSTEM, catalog).catalog


def _load_catalogs(fb: Farebox, scenario: Scenario) -> str:
    """Load the scenario's catalog (and any more); a catalog that cannot load is an error of the file."""
    try:
        name = _load_catalog(fb, scenario, scenario.catalog)
        for more in scenario.more_catalogs:
            _load_catalog(fb, scenario, more)
    except (CatalogError, DomainError, OSError) as exc:
        raise ScenarioError(scenario.source, None, f"catalog: {exc}") from None
    return name


def run(scenario: Scenario, *, on_step: Callable[[Step, Answer, bool], None] | None = None) -> Result:
    """Run one scenario on its own fresh database; every step runs even after a failure."""
    result = Result(scenario)
    with tempfile.TemporaryDirectory(prefix="farebox-scenario-") as tmp:
        fb = fresh_box(Path(tmp), scenario.start)
        try:
            name = _load_catalogs(fb, scenario)
            clock = clocks.create(fb, SYSTEM, name=f"scenario {Path(scenario.source).name}", start=scenario.start)
            ctx = Context(fb, scenario, clock["id"], name)
            for s in scenario.steps:
                answer = _answer(ctx, s)
                result.steps_run += 1
                result.log.append((s, answer))
                expected = expectation(s, scenario.source)
                ok = matches(expected, answer) and (bool(expected) or answer.get("ok") is not False)
                if not ok:
                    result.failures.append(Failure(scenario.source, s.line, s.action, expected, answer))
                if on_step is not None:
                    on_step(s, answer, ok)
        finally:
            fb.engine.dispose()
    return result


def _answer(ctx: Context, s: Step) -> Answer:
    fn = STEPS.get(s.action)
    if fn is None:  # parse() checked the verbs; this is a programming error
        raise ScenarioError(ctx.scenario.source, s.line, f"no runner for step {s.action!r}")
    try:
        return fn(ctx, s)
    except DomainError as exc:
        return {"ok": False, "reason": exc.code, "message": exc.refusal.message}


def run_file(path: str | Path, **kwargs: Any) -> Result:
    return run(parse_file(path, verbs=frozenset(STEPS)), **kwargs)
