"""Tests that cannot pass by accident (T2): no assertion hedges an exact comparison with an `or` fallback."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _hedged(tree: ast.AST) -> list[int]:
    """`assert x == y or z`: the fallback `z` makes the exact check unable to fail the test."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert) and isinstance(node.test, ast.BoolOp) and isinstance(node.test.op, ast.Or):
            first = node.test.values[0]
            if isinstance(first, ast.Compare) and any(isinstance(op, (ast.Eq, ast.In)) for op in first.ops):
                lines.append(node.lineno)
    return lines


def test_T2_the_detector_finds_a_hedged_assertion():
    assert _hedged(ast.parse("assert seen == [1, 2] or 2 in seen")) == [1]
    assert _hedged(ast.parse("assert seen == [1, 2]\nassert a or b")) == []


def test_T2_no_test_hedges_an_exact_assertion_with_or():
    found = {
        str(path.relative_to(TESTS)): lines
        for path in sorted(TESTS.rglob("*.py"))
        if (lines := _hedged(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert found == {}
