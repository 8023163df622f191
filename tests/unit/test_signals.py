"""Signals run their listeners in the publisher's transaction (G3, G12)."""

from datetime import UTC, datetime

from farebox.services import signals


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


def test_load_all_imports_every_wired_module():
    signals.load_all()
    import sys

    assert all(name in sys.modules for name in signals.MODULES)
