"""Signals run their listeners in the publisher's transaction (G3, G12)."""

import ast
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from farebox.events import signals


def test_listeners_of_a_kind_and_of_every_kind_run_in_order():
    seen = []

    @signals.on("test.happened")
    def _one(uow, s):
        seen.append(("one", s.subject))

    @signals.on("*")
    def _every(uow, s):
        seen.append(("every", s.kind))

    try:
        signals.publish(None, signals.Signal("test.happened", "acme", datetime(2026, 1, 5, tzinfo=UTC), subject="x"))
        signals.publish(None, signals.Signal("test.other", "acme", datetime(2026, 1, 5, tzinfo=UTC)))
        assert seen == [("one", "x"), ("every", "test.happened"), ("every", "test.other")]
    finally:
        signals._LISTENERS["test.happened"].remove(_one)
        signals._LISTENERS["*"].remove(_every)


SRC = Path(__file__).resolve().parents[2] / "src"


def _registers(path: Path) -> bool:
    """Does this module register a listener (`@signals.on`, `@on`) or a due-item handler (`@due.handler`)?"""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for d in node.decorator_list:
                f = d.func if isinstance(d, ast.Call) else d
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
                if (name == "on" and owner in ("", "signals")) or (name == "handler" and owner in ("", "due")):
                    return True
    return False


def test_T14_every_module_that_registers_a_listener_or_handler_is_loaded_by_the_worker():
    """A module missing from signals.MODULES would be a listener that silently never runs in the worker: start a
    fresh interpreter, build the container the way `farebox worker` does, and list what it imported."""
    registering = sorted(
        ".".join(p.relative_to(SRC).with_suffix("").parts)
        for p in (SRC / "farebox").rglob("*.py")
        if p.name not in ("signals.py", "due.py") and _registers(p)
    )
    assert "farebox.alerts.services.notify" in registering and "farebox.subscriptions.services.due_work" in registering
    probe = (
        "import sys; from farebox.entrypoints import cli; cli._fb(); "
        "print(' '.join(m for m in sys.modules if m.startswith('farebox.')))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAREBOX_")}
    env["FAREBOX_DATABASE_URL"] = "sqlite://"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    assert [m for m in registering if m not in loaded] == []
    assert [m for m in registering if m not in signals.MODULES] == []  # docs/architecture.md: each is named there


def test_T19_a_listener_registered_by_a_test_is_gone_after_it(request):
    """The autouse fixture in tests/conftest.py restores the registry; this test leaves one behind on purpose."""
    signals.on("test.t19")(lambda uow, s: None)
    assert signals._LISTENERS["test.t19"]


def test_T19_the_listener_of_the_previous_test_is_gone():
    assert not signals._LISTENERS.get("test.t19")
