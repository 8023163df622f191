"""What every step sees: the running box, the scenario's clock, its tenants; and the step registry.

Steps live in `steps_*.py` by area; each registers itself with `@step(name)`
and returns its answer as a plain mapping (datetimes as ISO strings).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from farebox.bootstrap import Farebox
from farebox.kernel.access import SYSTEM, Principal, Role
from farebox.scenarios.document import Scenario, ScenarioError, Step

Answer = dict[str, Any]


@dataclass
class Context:
    fb: Farebox
    scenario: Scenario
    clock_id: str
    catalog: str
    tenants: set[str] = field(default_factory=set)

    def owner(self, tenant_id: str) -> Principal:
        return Principal(Role.OWNER, tenant_id=tenant_id, email=f"owner@{tenant_id}.example", key_id="scenario")

    def tenant(self, s: Step) -> str:
        tenant_id = s.args.get("tenant")
        if tenant_id not in self.tenants:
            raise self.error(s, f"unknown tenant {tenant_id!r}; create it first with `- tenant: NAME`")
        return str(tenant_id)

    def actor(self, s: Step, tenant_id: str) -> Principal:
        """Who calls: the tenant's owner by default; `as: admin|member|operator`, or `as: owner@other` (G6)."""
        who = s.args.get("as")
        if who is None:
            return self.owner(tenant_id)
        role, _, of = str(who).partition("@")
        if role == "operator":
            return SYSTEM
        try:
            parsed = Role(role)
        except ValueError:
            raise self.error(s, f"`as` is owner, admin, member or operator (optionally @TENANT), not {who!r}") from None
        of = of or tenant_id
        return Principal(parsed, tenant_id=of, email=f"{role}@{of}.example", key_id="scenario")

    def error(self, s: Step, message: str) -> ScenarioError:
        return ScenarioError(self.scenario.source, s.line, message)

    def required(self, s: Step, key: str) -> Any:
        if key not in s.args:
            raise self.error(s, f"`{s.action}` needs `{key}`")
        return s.args[key]


StepFn = Callable[[Context, Step], Answer]
STEPS: dict[str, StepFn] = {}


def step(name: str) -> Callable[[StepFn], StepFn]:
    def register(fn: StepFn) -> StepFn:
        STEPS[name] = fn
        return fn

    return register


def instant(value: Any) -> datetime:
    """A YAML date-time (or ISO string) as an aware UTC datetime; a bare date is midnight UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (datetime, date)) else value
