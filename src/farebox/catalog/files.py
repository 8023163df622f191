"""Reading and validating catalog files (YAML): the format of docs/catalog.md.

Validation is done with Pydantic; every error names the file, the plan and
the field (`farebox catalog validate`).  The result is the pure
`farebox.catalog.domain.Catalog`.  A plan's normalised document
(`plan_document`) is what gets stored and versioned: the same document
always rebuilds the same `Plan`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from farebox.catalog import domain as c
from farebox.kernel.money import CurrencyError, Money, MoneyError, exponent
from farebox.kernel.periods import Interval, parse_duration

BUNDLED = ("session-caps", "attendee-credits", "agent-sessions")


class CatalogError(ValueError):
    """A catalog that cannot be loaded; the message names file, plan and field."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
Percent = Annotated[int, Field(ge=1, le=1000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: Any) -> str:
    if isinstance(value, int):
        raise ValueError("give a duration with a unit, e.g. 90m, 4h, 24h")
    parse_duration(str(value))
    return str(value)


def _amount(value: Any) -> str:
    if isinstance(value, float):
        raise ValueError("write money as a quoted decimal string, e.g. \"150.00\" (G1: no floats)")
    try:
        Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal amount") from None
    return str(value)


class MeterDoc(_Strict):
    kind: c.MeterKind
    scope: c.Scope
    unit: str = "unit"
    window: str | None = None

    _window = field_validator("window", mode="before")(lambda v: None if v is None else _duration(v))

    @model_validator(mode="after")
    def _check(self) -> MeterDoc:
        if self.kind is c.MeterKind.BILLABLE_SESSIONS and self.window is None:
            raise ValueError("a billable_sessions meter needs a window (A1: 24h)")
        if self.kind is not c.MeterKind.BILLABLE_SESSIONS and self.window is not None:
            raise ValueError("only a billable_sessions meter has a window")
        if self.kind is c.MeterKind.CONCURRENT_ATTENDEES and self.scope is not c.Scope.OCCURRENCE:
            raise ValueError("concurrent_attendees is counted per occurrence: scope must be occurrence")
        return self


class LimitDoc(_Strict):
    included: Annotated[int, Field(ge=0)] | None = None
    policy: c.Policy = c.Policy.HARD
    overage_unit_price: str | None = None
    alerts: list[Percent] = []
    customer_limit: bool = False
    carry_forward_on_upgrade: bool = False

    _price = field_validator("overage_unit_price", mode="before")(lambda v: None if v is None else _amount(v))

    @model_validator(mode="after")
    def _check(self) -> LimitDoc:
        if (self.policy is c.Policy.OVERAGE) != (self.overage_unit_price is not None):
            raise ValueError("overage_unit_price is required with policy overage, and only then")
        if self.included is None and self.policy is not c.Policy.SOFT and self.alerts:
            raise ValueError("an unlimited limit has no alert thresholds")
        if self.alerts != sorted(set(self.alerts)):
            raise ValueError("alerts must be increasing percentages without repeats")
        return self


class TrialDoc(_Strict):
    days: Annotated[int, Field(ge=1, le=366)]
    usage: dict[str, Annotated[int, Field(ge=1)]] = {}
    usage_alerts: list[Percent] = []
    days_left_alerts: list[Annotated[int, Field(ge=1)]] = []
    ending_soon_days: Annotated[int, Field(ge=0)] = 3
    ending_soon_usage_percent: Percent = 90


class PlanDoc(_Strict):
    name: str
    price: str
    interval: Interval
    billing: c.Billing = c.Billing.IN_ADVANCE
    sales: c.Sales = c.Sales.SELF_SERVE
    limits: dict[str, LimitDoc] = {}
    trial: TrialDoc | None = None
    event_duration: str | None = None
    duration_warning: str = "10m"
    seats: Annotated[int, Field(ge=0)] | None = None
    features: list[str] = []
    grace_days: Annotated[int, Field(ge=0, le=90)] = 7
    requires_payment_method: bool | None = None
    answered_only: bool = False
    alert_tone: c.AlertTone = c.AlertTone.STANDARD
    examples: list[str] = []
    description: str = ""

    _price = field_validator("price", mode="before")(_amount)
    _durations = field_validator("event_duration", "duration_warning", mode="before")(
        lambda v: None if v is None else _duration(v)
    )


class CatalogDoc(_Strict):
    name: Code
    title: str
    currency: str = "USD"
    source: str = ""
    free_plan: str | None = None
    retention_days: Annotated[int, Field(ge=0)] | None = None
    meters: dict[Code, MeterDoc]
    plans: dict[Code, PlanDoc] = Field(min_length=1)

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        try:
            exponent(value)
        except CurrencyError as exc:
            raise ValueError(str(exc)) from None
        return value


def _money(amount: str, currency: str, location: tuple[str, ...], problems: list[str]) -> Money:
    try:
        money = Money.parse(amount, currency)
    except MoneyError as exc:
        problems.append(_located(location, str(exc)))
        return Money.zero(currency)
    problem = c.price_problem(money)
    if problem is not None:
        problems.append(_located(location, problem))
    return money


def _build(doc: CatalogDoc, problems: list[str]) -> c.Catalog:
    meters = {
        key: c.Meter(key, m.kind, m.scope, m.unit, parse_duration(m.window) if m.window else None)
        for key, m in doc.meters.items()
    }
    plans: dict[str, c.Plan] = {}
    for tier, (code, p) in enumerate(doc.plans.items()):
        at = f"plan {code!r}"
        limits = []
        for meter_key, lim in p.limits.items():
            where = ("plans", code, "limits", meter_key)
            meter = meters.get(meter_key)
            if meter is None:
                problems.append(_located(where, f"no meter {meter_key!r} (meters: {', '.join(meters)})"))
                continue
            if lim.customer_limit and meter.scope is not c.Scope.PERIOD:
                message = "only a per-period meter can have a customer limit"
                problems.append(_located((*where, "customer_limit"), message))
            if lim.policy is c.Policy.HARD_WITH_WAITING_ROOM and meter.scope is not c.Scope.OCCURRENCE:
                problems.append(_located((*where, "policy"), "a waiting room needs a per-occurrence meter"))
            if lim.included is None and lim.policy in (c.Policy.OVERAGE, c.Policy.HARD_WITH_WAITING_ROOM):
                problems.append(_located((*where, "included"), f"policy {lim.policy} needs an included amount"))
            price = None
            if lim.overage_unit_price is not None:
                price = _money(lim.overage_unit_price, doc.currency, (*where, "overage_unit_price"), problems)
            limits.append(
                c.Limit(
                    meter=meter_key,
                    included=lim.included,
                    policy=lim.policy,
                    overage_unit_price=price,
                    alert_thresholds=tuple(lim.alerts),
                    customer_limit=lim.customer_limit,
                    carry_forward_on_upgrade=lim.carry_forward_on_upgrade,
                )
            )
        trial = None
        if p.trial is not None:
            for meter_key in p.trial.usage:
                if meter_key not in meters:
                    problems.append(f"{at}: field 'trial.usage.{meter_key}': no meter {meter_key!r}")
            trial = c.Trial(
                days=p.trial.days,
                usage=dict(p.trial.usage),
                usage_alerts=tuple(p.trial.usage_alerts),
                days_left_alerts=tuple(sorted(p.trial.days_left_alerts, reverse=True)),
                ending_soon_days=p.trial.ending_soon_days,
                ending_soon_usage_percent=p.trial.ending_soon_usage_percent,
            )
        price = _money(p.price, doc.currency, ("plans", code, "price"), problems)
        for example in p.examples:
            if example.split(".")[0] not in PlanDoc.model_fields:
                problems.append(f"{at}: field 'examples': {example!r} names no field of a plan")
        plans[code] = c.Plan(
            code=code,
            name=p.name,
            price=price,
            interval=p.interval,
            tier=tier,
            billing=p.billing,
            sales=p.sales,
            limits=tuple(limits),
            trial=trial,
            event_duration=parse_duration(p.event_duration) if p.event_duration else None,
            duration_warning=parse_duration(p.duration_warning),
            seats=p.seats,
            features=frozenset(p.features),
            grace_days=p.grace_days,
            requires_payment_method=(not price.is_zero())
            if p.requires_payment_method is None
            else p.requires_payment_method,
            answered_only=p.answered_only,
            alert_tone=p.alert_tone,
            example_price="price" in p.examples,
            description=p.description,
        )
    if doc.free_plan is not None:
        fallback = plans.get(doc.free_plan)
        if fallback is None:
            problems.append(f"field 'free_plan': no plan {doc.free_plan!r}")
        elif not fallback.is_free:
            problems.append(f"field 'free_plan': plan {doc.free_plan!r} is not free")
    return c.Catalog(
        name=doc.name,
        title=doc.title,
        currency=doc.currency,
        meters=meters,
        plans=plans,
        free_plan=doc.free_plan,
        retention_days=doc.retention_days,
        source=doc.source,
    )


def _located(location: tuple[Any, ...] | list[Any], message: str) -> str:
    """`plan 'pro': field 'limits.credits.included': <message>` for a place in the document."""
    loc = [str(part) for part in location]
    where = ""
    if len(loc) >= 2 and loc[0] == "plans":
        where = f"plan {loc[1]!r}: "
        loc = loc[2:]
    elif len(loc) >= 2 and loc[0] == "meters":
        where = f"meter {loc[1]!r}: "
        loc = loc[2:]
    field_name = ".".join(loc) or "(document)"
    return f"{where}field {field_name!r}: {message}"


def _describe(error: Mapping[str, Any]) -> str:
    return _located(error["loc"], error["msg"].removeprefix("Value error, "))


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _index_paths(node: yaml.Node, path: tuple[Any, ...], paths: dict[int, tuple[Any, ...]]) -> None:
    """Record where in the document each mapping node sits (aliases are visited once)."""
    if id(node) in paths:
        return
    if isinstance(node, yaml.MappingNode):
        paths[id(node)] = path
        for key, value in node.value:
            _index_paths(value, path + ((key.value if isinstance(key, yaml.ScalarNode) else "?"),), paths)
    elif isinstance(node, yaml.SequenceNode):
        paths[id(node)] = path
        for index, item in enumerate(node.value):
            _index_paths(item, path + (index,), paths)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a mapping key given twice (else the last one would silently win),
    naming the plan and field; keys brought in by a `<<` merge may still be overridden."""

    def construct_document(self, node: yaml.Node) -> Any:
        self._paths: dict[int, tuple[Any, ...]] = {}
        _index_paths(node, (), self._paths)
        return super().construct_document(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: the base constructor refuses it
            if first is not None:
                where = self._paths.get(id(node), ())
                raise _DuplicateKey(_located((*where, key), f"duplicate key (lines {first} and {line}): give it once"))
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def parse_catalog(data: Any, *, source: str) -> c.Catalog:
    """Validate a parsed catalog document; raise `CatalogError` naming every problem."""
    if not isinstance(data, dict):
        raise CatalogError(source, ["the document must be a mapping with name, meters and plans"])
    try:
        doc = CatalogDoc.model_validate(data)
    except ValidationError as exc:
        raise CatalogError(source, [_describe(e) for e in exc.errors()]) from None
    problems: list[str] = []
    catalog = _build(doc, problems)
    if problems:
        raise CatalogError(source, problems)
    return catalog


def load_catalog_text(text: str, *, source: str) -> tuple[c.Catalog, dict[str, Any]]:
    """Parse YAML text; return the catalog and its normalised document."""
    try:
        loader = _UniqueKeyLoader(text)  # reads the whole text: a control character is refused here
    except yaml.reader.ReaderError as exc:
        exc.name = source
        raise CatalogError(source, [f"not valid YAML: {exc}"]) from None
    loader.name = source  # marks name the file, not "<unicode string>"
    try:
        data = loader.get_single_data()
    except _DuplicateKey as exc:
        raise CatalogError(source, [exc.problem]) from None
    except yaml.YAMLError as exc:
        raise CatalogError(source, [f"not valid YAML: {exc}"]) from None
    finally:
        loader.dispose()
    catalog = parse_catalog(data, source=source)
    return catalog, CatalogDoc.model_validate(data).model_dump(mode="json")


def load_catalog_file(path: str | Path) -> tuple[c.Catalog, dict[str, Any]]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise CatalogError(str(path), [f"cannot read the file: {reason}"]) from None
    return load_catalog_text(text, source=str(path))


def bundled_catalog_text(name: str) -> str:
    if name not in BUNDLED:
        raise CatalogError(name, [f"no bundled catalog {name!r} (bundled: {', '.join(BUNDLED)})"])
    return resources.files("farebox.catalogs").joinpath(f"{name}.yaml").read_text(encoding="utf-8")


def load_catalog(name_or_path: str) -> tuple[c.Catalog, dict[str, Any]]:
    """A bundled catalog by name, or a catalog file by path."""
    if name_or_path in BUNDLED:
        return load_catalog_text(bundled_catalog_text(name_or_path), source=f"{name_or_path} (bundled)")
    return load_catalog_file(name_or_path)


def plan_document(document: dict[str, Any], code: str) -> dict[str, Any]:
    """The stored form of one plan: its own fields plus what it needs from the catalog."""
    plan = document["plans"][code]
    meters = {key: document["meters"][key] for key in plan["limits"]}
    meters.update({key: document["meters"][key] for key in (plan.get("trial") or {}).get("usage", {})})
    return {
        "currency": document["currency"],
        "meters": meters,
        "plan": plan,
        "tier": list(document["plans"]).index(code),
    }


def plan_fingerprint(plan_doc: dict[str, Any]) -> str:
    canonical = json.dumps(plan_doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def plan_from_document(plan_doc: dict[str, Any], *, catalog: str, code: str) -> c.Plan:
    """Rebuild a stored plan version (the subscribed version never changes under a tenant)."""
    data = {
        "name": catalog,
        "title": catalog,
        "currency": plan_doc["currency"],
        "meters": plan_doc["meters"],
        "plans": {code: plan_doc["plan"]},
    }
    plan = parse_catalog(data, source=f"{catalog}/{code} (stored)").plan(code)
    return c.Plan(**{**{f: getattr(plan, f) for f in c.Plan.__slots__}, "tier": plan_doc["tier"]})


def plan_meters(plan_doc: dict[str, Any]) -> dict[str, c.Meter]:
    return {
        key: c.Meter(
            key,
            c.MeterKind(m["kind"]),
            c.Scope(m["scope"]),
            m["unit"],
            parse_duration(m["window"]) if m["window"] else None,
        )
        for key, m in plan_doc["meters"].items()
    }

