"""The pure core imports only the standard library and never reads the clock (G2).

The pure core is the shared kernel (`farebox/kernel/`) and the `domain` layer of every product area
(`farebox/<area>/domain.py` or `farebox/<area>/domain/`)."""

import ast
import re
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "farebox"
PURE = re.compile(r"^farebox\.(kernel|[a-z_]+\.domain)(\.|$)")


def _modules():
    found = sorted(PACKAGE.joinpath("kernel").rglob("*.py"))
    for area in sorted(p for p in PACKAGE.iterdir() if p.is_dir()):
        found += [area / "domain.py"] if (area / "domain.py").exists() else []
        found += sorted((area / "domain").rglob("*.py")) if (area / "domain").is_dir() else []
    return found


def test_the_pure_core_is_where_the_layout_says():
    names = {str(p.relative_to(PACKAGE)) for p in _modules()}
    for expected in ("kernel/money.py", "catalog/domain.py", "metering/domain/admission_core.py",
                     "subscriptions/domain/machine.py", "invoicing/domain/charges.py", "alerts/domain/alerts.py"):
        assert expected in names


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
                assert (
                    PURE.match(name) or top in sys.stdlib_module_names or top == "__future__"
                ), f"{path.relative_to(PACKAGE)} imports {name}"


def test_G2_domain_never_reads_the_system_clock():
    for path in _modules():
        source = path.read_text()
        for forbidden in ("datetime.now(", "datetime.utcnow(", "date.today(", "time.time(", "time.monotonic("):
            assert forbidden not in source, f"{path.name} calls {forbidden}"


ADAPTER = re.compile(
    r"^farebox\.(storage|mail|catalog\.files|clocks\.system|invoicing\.pdf|alerts\.webhooks|payments\.providers"
    r"|[a-z_]+\.db)(\.|$)"
)
ENTRYPOINTS = PACKAGE / "entrypoints"


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
        assert not [n for n in _imports(path) if ADAPTER.match(n)], f"{path.name} imports an adapter"
        assert ".uow(" not in path.read_text(), f"{path.name} opens a unit of work"


REPOSITORY = re.compile(r"^farebox\.([a-z_]+\.db|storage\.(idempotency|repositories))(\.|$)")


def test_audit_3_1_only_the_api_edge_reads_a_repository_the_idempotency_keys():
    for path in sorted(ENTRYPOINTS.rglob("*.py")):
        repos = [n for n in _imports(path) if REPOSITORY.match(n)]
        allowed = {"farebox.storage.idempotency"} if path.name == "deps.py" else set()
        assert set(repos) <= allowed, f"{path.relative_to(ENTRYPOINTS)} imports {repos}"


def test_no_area_reaches_into_the_edge():
    """Areas (domain, services, db) never import the HTTP/CLI/portal edge: dependencies point inward."""
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in ("entrypoints", "scenarios", "client", "migrations") or len(relative.parts) == 1:
            continue
        edge = [n for n in _imports(path) if n.startswith("farebox.entrypoints")]
        assert not edge, f"{relative} imports {edge}"
