"""`farebox scenario run FILE...`: executable pricing scenarios (docs/scenarios.md)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from farebox.scenarios.document import ScenarioError
from farebox.scenarios.runner import run_file

scenario_app = typer.Typer(help="Executable pricing scenarios (docs/scenarios.md).", no_args_is_help=True)
console = Console(soft_wrap=True)


def _files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        found.extend(
            sorted(path.glob("*.yaml")) if path.is_dir() else [path]
        )  # not sub-directories: catalogs live there
    return found


@scenario_app.command("run")
def run(
    paths: list[Path] = typer.Argument(..., help="Scenario files, or directories of *.yaml scenario files"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print every step's answer"),
) -> None:
    """Run each scenario on a fresh embedded database and test clock; exit 1 if any step missed its expectation."""
    failed = 0
    files = _files(paths)
    for path in files:
        try:
            result = run_file(
                path,
                on_step=(
                    lambda s, answer, ok, path=path: console.print(
                        f"  {'ok ' if ok else 'FAIL'} {path}:{s.line} {s.action}: {answer}", markup=False
                    )
                )
                if verbose
                else None,
            )
        except ScenarioError as exc:
            console.print(f"[red]ERROR[/red] {exc}")
            failed += 1
            continue
        if result.ok:
            console.print(f"[green]ok[/green]   {path} ({result.steps_run} steps)")
        else:
            failed += 1
            console.print(f"[red]FAIL[/red] {path} ({len(result.failures)} of {result.steps_run} steps missed)")
            for failure in result.failures:
                console.print(f"  {failure}", markup=False)
    console.print(f"{len(files) - failed} of {len(files)} scenario files passed")
    if failed:
        raise typer.Exit(1)
