"""`farebox export --tenant T`: a tenant's records as JSON Lines and CSV files."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from farebox.bootstrap import bootstrap
from farebox.kernel.access import SYSTEM
from farebox.kernel.reasons import DomainError
from farebox.records.services import export

console = Console()


def export_command(
    tenant: str = typer.Option(..., "--tenant", help="The tenant's id"),
    out: Path = typer.Option(None, "--out", help="Directory to write into (default: ./export-TENANT)"),
    formats: list[str] = typer.Option(list(export.FORMATS), "--format", help="jsonl and/or csv"),
) -> None:
    """Export a tenant's usage, subscriptions, invoices, notifications and audit log (before cancelling, G14)."""
    from farebox.entrypoints.cli import known_tenant, refuse

    fb = bootstrap()
    known_tenant(fb, tenant)
    directory = out or Path(f"export-{tenant}")
    created = not directory.exists()
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("starting", total=None)

        def on_table(name: str, rows: int) -> None:
            progress.update(task, description=name, total=rows, completed=0)

        try:
            report = export.export_to_directory(
                fb,
                SYSTEM,
                tenant,
                directory,
                formats=tuple(formats),
                on_table=on_table,
                on_row=lambda: progress.advance(task),
            )
        except BaseException as exc:  # a failed export leaves no folder it created behind
            if created:
                shutil.rmtree(directory, ignore_errors=True)
            if isinstance(exc, DomainError):
                raise refuse(exc) from None
            raise
    total = sum(report.tables.values())
    console.print(f"exported {total} rows of {len(report.tables)} tables to {directory}/ ({len(report.files)} files)")
