"""The pure core imports only the standard library and never reads the clock (G2)."""

import ast
import sys
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "src" / "farebox" / "domain"


def _modules():
    return sorted(DOMAIN.rglob("*.py"))


def test_domain_imports_only_stdlib_and_itself():
    for path in _modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                assert top == "farebox" and name.startswith("farebox.domain") or top in sys.stdlib_module_names or top == "__future__", f"{path.name} imports {name}"


def test_G2_domain_never_reads_the_system_clock():
    for path in _modules():
        source = path.read_text()
        for forbidden in ("datetime.now(", "datetime.utcnow(", "date.today(", "time.time(", "time.monotonic("):
            assert forbidden not in source, f"{path.name} calls {forbidden}"
