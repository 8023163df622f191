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


ENTRYPOINTS = DOMAIN.parent / "entrypoints"


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names += [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
    return names


def test_audit_3_1_the_portal_calls_services_never_repositories_or_a_unit_of_work():
    """The portal reads through service functions (which check the caller's role); it opens no transaction."""
    for path in sorted((ENTRYPOINTS / "portal").rglob("*.py")):
        assert not [n for n in _imports(path) if n.startswith("farebox.adapters")], f"{path.name} imports an adapter"
        assert ".uow(" not in path.read_text(), f"{path.name} opens a unit of work"


def test_audit_3_1_only_the_api_edge_reads_a_repository_the_idempotency_keys():
    for path in sorted(ENTRYPOINTS.rglob("*.py")):
        repos = [n for n in _imports(path) if n.startswith("farebox.adapters.db.repos")]
        allowed = {"farebox.adapters.db.repos", "farebox.adapters.db.repos.idempotency"} if path.name == "deps.py" else set()
        assert set(repos) <= allowed, f"{path.relative_to(ENTRYPOINTS)} imports {repos}"
