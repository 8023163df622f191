"""Reading a scenario file: YAML with the line number of every step kept.

A scenario is data; nothing here touches storage.  `parse` returns the
catalog, the start time and the steps, each step with its YAML line so a
failure can point at it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from farebox.kernel.clock import ensure_utc

LINE = "__line__"


class ScenarioError(ValueError):
    """The scenario file itself is wrong (not an expectation that failed)."""

    def __init__(self, source: str, line: int | None, message: str) -> None:
        self.source, self.line = source, line
        super().__init__(f"{source}:{line}: {message}" if line else f"{source}: {message}")


class _Loader(yaml.SafeLoader):
    pass


def _mapping_with_line(loader: _Loader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping: dict[str, Any] = {str(k): v for k, v in loader.construct_mapping(node, deep=True).items()}
    mapping[LINE] = node.start_mark.line + 1
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)


def plain(value: Any) -> Any:
    """A value without the line markers."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items() if k != LINE}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Step:
    line: int
    action: str  # the step's verb: tenant, advance, join, check...
    args: dict[str, Any]  # the verb's value (a mapping, or {"value": scalar})
    expect: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # other keys beside the verb (e.g. `plan` next to `tenant`)


@dataclass(frozen=True)
class Scenario:
    source: str
    catalog: str | dict[str, Any]  # a bundled name, a file, or {base: NAME, ...changes deep-merged into it}
    start: datetime
    steps: tuple[Step, ...]
    title: str = ""
    more_catalogs: tuple[str, ...] = ()  # loaded too, e.g. the catalog a tenant migrates to (L11)


def parse_text(text: str, source: str = "<scenario>", *, verbs: frozenset[str] | None = None) -> Scenario:
    try:
        doc = yaml.load(text, Loader=_Loader)  # noqa: S506  (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ScenarioError(
            source, mark.line + 1 if mark else None, f"not valid YAML: {getattr(exc, 'problem', exc)}"
        ) from None
    if not isinstance(doc, dict):
        raise ScenarioError(source, None, "a scenario is a mapping with catalog, start and steps")
    unknown = set(doc) - {LINE, "catalog", "start", "steps", "title", "more_catalogs"}
    if unknown:
        raise ScenarioError(source, doc[LINE], f"unknown top-level keys: {', '.join(sorted(unknown))}")
    for key in ("catalog", "start", "steps"):
        if key not in doc:
            raise ScenarioError(source, doc[LINE], f"missing {key!r}")
    start = doc["start"]
    if isinstance(start, str):
        try:
            start = datetime.fromisoformat(start.replace("Z", "+00:00"))
        except ValueError:
            raise ScenarioError(source, doc[LINE], f"start {start!r} is not an ISO date-time") from None
    if not isinstance(start, datetime):
        raise ScenarioError(source, doc[LINE], "start must be a date-time like 2026-01-05T09:00:00Z")
    if not isinstance(doc["steps"], list) or not doc["steps"]:
        raise ScenarioError(source, doc[LINE], "steps must be a non-empty list")
    steps = tuple(_step(source, raw, verbs) for raw in doc["steps"])
    start = ensure_utc(start) if start.tzinfo else start.replace(tzinfo=timezone.utc)
    catalog = plain(doc["catalog"])
    if isinstance(catalog, dict) and "base" not in catalog:
        raise ScenarioError(source, doc["catalog"][LINE], "a catalog given as a mapping names its `base` catalog")
    more = doc.get("more_catalogs") or []
    if not isinstance(more, list):
        raise ScenarioError(source, doc[LINE], "more_catalogs is a list of catalog names or files")
    return Scenario(
        source,
        catalog if isinstance(catalog, dict) else str(catalog),
        start,
        steps,
        str(doc.get("title", "")),
        tuple(map(str, more)),
    )


def _step(source: str, raw: Any, verbs: frozenset[str] | None) -> Step:
    if not isinstance(raw, dict):
        raise ScenarioError(source, None, f"a step is a mapping, not {raw!r}")
    line = raw[LINE]
    keys = [k for k in raw if k not in (LINE, "expect")]
    known = [k for k in keys if verbs is None or k in verbs]
    if not known:
        raise ScenarioError(
            source,
            line,
            f"unknown step {', '.join(map(str, keys)) or '(empty)'}; known: {', '.join(sorted(verbs or ()))}",
        )
    action = known[0]
    value = raw[action]
    args = plain(value) if isinstance(value, dict) else {"value": value}
    expect = plain(raw.get("expect") or {})
    if not isinstance(expect, dict):
        raise ScenarioError(source, line, "expect must be a mapping")
    extra = {k: plain(raw[k]) for k in keys if k != action}
    return Step(line, action, args, expect, extra)


def parse_file(path: str | Path, *, verbs: frozenset[str] | None = None) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(str(path), None, f"cannot read: {exc.strerror}") from None
    return parse_text(text, str(path), verbs=verbs)
