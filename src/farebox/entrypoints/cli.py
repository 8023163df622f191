"""The `farebox` command line (Typer + Rich)."""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from farebox.adapters.catalog_files import BUNDLED, CatalogError, load_catalog
from farebox.bootstrap import Farebox, bootstrap
from farebox.domain.access import SYSTEM, Role

app = typer.Typer(help="farebox: billing, metering and admission control.", no_args_is_help=True, add_completion=False)
catalog_app = typer.Typer(help="Validate and load plan catalogs.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(keys_app, name="keys")
console = Console()
err = Console(stderr=True)


def _fb() -> Farebox:
    return bootstrap()


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (Alembic)."""
    from farebox.adapters.db.migrate import upgrade

    fb = _fb()
    upgrade(fb.engine)
    console.print(f"[green]migrated[/green] {fb.engine.url.render_as_string(hide_password=True)}")


@catalog_app.command("validate")
def catalog_validate(files: list[str] = typer.Argument(..., help="Catalog files, or bundled catalog names")) -> None:
    """Check catalog files; a broken one is refused with the file, plan and field."""
    failed = False
    for name in files:
        try:
            catalog, _ = load_catalog(name)
        except CatalogError as exc:
            failed = True
            err.print(f"[red]invalid[/red] {exc.source}")
            for problem in exc.problems:
                err.print(f"  - {problem}")
            continue
        console.print(f"[green]valid[/green] {name}: catalog {catalog.name!r}, plans {', '.join(catalog.plans)}")
    raise typer.Exit(1 if failed else 0)


@catalog_app.command("load")
def catalog_load(
    sources: list[str] = typer.Argument(None, help="Catalog files or bundled names"),
    bundled: bool = typer.Option(False, "--bundled", help="Load every bundled catalog"),
) -> None:
    """Load catalogs into the database; a changed plan becomes a new version."""
    from farebox.services import catalog as service

    names = list(sources or []) + (list(BUNDLED) if bundled else [])
    if not names:
        err.print("name a catalog file or use --bundled")
        raise typer.Exit(2)
    fb = _fb()
    for name in names:
        try:
            report = service.load(fb, SYSTEM, name)
        except CatalogError as exc:
            err.print(f"[red]invalid[/red] {exc}")
            raise typer.Exit(1) from None
        console.print(
            f"[green]loaded[/green] {report.catalog}: new {', '.join(report.added) or '-'}; "
            f"unchanged {', '.join(report.unchanged) or '-'}"
            + (f"; retired {', '.join(report.retired)}" if report.retired else "")
        )


@keys_app.command("issue")
def keys_issue(
    tenant: str = typer.Option(None, help="Tenant id; omit for an operator key"),
    role: Role = typer.Option(Role.OPERATOR, help="operator, owner, admin or member"),
    name: str = typer.Option("", help="A label for the key"),
) -> None:
    """Issue an API key and print it (it is shown only once)."""
    from farebox.services import tenants

    issued = tenants.issue_api_key(_fb(), SYSTEM, tenant_id=tenant, role=role, name=name)
    console.print(issued.secret)


@app.command()
def demo() -> None:
    """Load the bundled catalogs and a demo tenant of each (safe to run again)."""
    from farebox.services import demo as service

    fb = _fb()
    for report in service.load_catalogs(fb):
        console.print(f"catalog [bold]{report.catalog}[/bold]: {len(report.added)} new plan versions, {len(report.unchanged)} unchanged")
    table = Table(title="Demo tenants")
    for column in ("tenant", "catalog", "plan"):
        table.add_column(column)
    table.add_column("owner API key", overflow="fold")
    for t in service.load_demo(fb):
        table.add_row(t.tenant_id, t.catalog, t.plan, t.owner_key or "(exists; key shown when created)")
    console.print(table)
    key, created = service.ensure_operator_key(fb, Path("var/operator-key"))
    console.print(f"operator API key ({'new' if created else 'from var/operator-key'}): [bold]{key}[/bold]")


@app.command()
def serve(
    host: str = typer.Option(None, help="Default: FAREBOX_HOST or 127.0.0.1"),
    port: int = typer.Option(None, help="Default: FAREBOX_PORT or 8000"),
    workers: int = typer.Option(1, help="Server processes"),
) -> None:
    """Serve the API (OpenAPI at /docs) and the portal."""
    import uvicorn

    fb = _fb()
    uvicorn.run(
        "farebox.entrypoints.api.asgi:app",
        host=host or fb.settings.host,
        port=port or fb.settings.port,
        workers=workers,
        log_level=os.environ.get("FAREBOX_LOG_LEVEL", "info"),
    )


@app.command()
def worker(
    once: bool = typer.Option(False, "--once", help="Process what is due now, then stop"),
    interval: float = typer.Option(1.0, help="Seconds between passes"),
) -> None:
    """Process due work (renewals, trial ends, grace ends, scheduled changes, retention)."""
    from farebox.services import due

    fb = _fb()
    while True:
        processed = due.run_due(fb, limit=1000)
        for item in processed:
            console.print(f"{datetime.now().isoformat(timespec='seconds')} {item.tenant_id} {item.kind} {item.ref}: {item.outcome}")
        if once:
            return
        if not processed:
            time.sleep(interval)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
