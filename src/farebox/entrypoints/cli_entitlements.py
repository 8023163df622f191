"""`farebox entitlements check TENANT FEATURE`: may this tenant use a feature of its plan (S2, L5)?"""

from __future__ import annotations

import typer
from rich.console import Console

from farebox.bootstrap import bootstrap
from farebox.kernel.access import SYSTEM
from farebox.kernel.reasons import DomainError

entitlements_app = typer.Typer(help="Plan features: may a tenant use SSO, co-hosts, premium...?", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


@entitlements_app.command("check")
def check(
    tenant: str = typer.Argument(..., help="The tenant's id"),
    feature: str = typer.Argument(..., help="e.g. sso, cohosts"),
) -> None:
    """Print whether the tenant's current plan includes the feature; exit 1 when it does not (or on an error)."""
    from farebox.subscriptions.services import entitlements

    try:
        answer = entitlements.check(bootstrap(), SYSTEM, tenant, feature)
    except DomainError as e:
        err.print(f"{e.code}: {e.refusal.message}", markup=False)
        raise typer.Exit(1) from None
    verdict = "[green]yes[/green]" if answer.allowed else "[red]no[/red]"
    console.print(f"{verdict} {answer.feature} on plan {answer.plan or '-'}: {answer.reason}: {answer.message}")
    if not answer.allowed:
        raise typer.Exit(1)
