"""`farebox credits`: a tenant's credit balance, and refunding it to the card (docs/invoicing.md)."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console

from farebox.kernel.access import SYSTEM
from farebox.kernel.reasons import DomainError

credits_app = typer.Typer(help="Customer credit balances: show one, refund one to the card (operator).",
                          no_args_is_help=True)
console = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


@credits_app.command("show")
def show(tenant: str = typer.Argument(..., help="The tenant's id")) -> None:
    """The credit balance per currency and its latest entries, each with its cause (G3)."""
    from farebox.bootstrap import bootstrap
    from farebox.invoicing.services import credits

    try:
        balance = credits.credit_balance(bootstrap(), SYSTEM, tenant)
    except DomainError as exc:
        err.print(f"[red]refused[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"{tenant}: balance {', '.join(m.format() for m in balance.balances) or 'none'}")
    for e in balance.entries:
        console.print(f"  {e.created_at.isoformat()} {e.kind:<13} {e.amount.format():>14}  {e.cause}")
    for r in balance.refunds:
        console.print(f"  refund {_refund_line(r)}")


@credits_app.command("refund")
def refund(
    tenant: str = typer.Argument(..., help="The tenant's id"),
    amount_minor: int = typer.Option(None, "--amount-minor", min=1,
                                     help="Refund this much (minor units); default: the whole balance"),
    currency: str = typer.Option(None, "--currency", help="The balance's currency (default: the one with a balance)"),
) -> None:
    """Pay the credit balance back to the tenant's card through the payment provider."""
    from farebox.bootstrap import bootstrap
    from farebox.invoicing.services import credits

    try:
        done = credits.refund_credit(bootstrap(), SYSTEM, tenant, currency=currency, amount_minor=amount_minor)
    except DomainError as exc:
        err.print(f"[red]refused[/red] {exc}")
        raise typer.Exit(1) from None
    for r in done:
        console.print(f"refund {_refund_line(r)}")
    if any(r.status != "succeeded" for r in done):
        raise typer.Exit(1)


def _refund_line(r: Any) -> str:
    return f"{r.id}: {r.amount.format()} {r.status}" + (f": {r.failure_message}" if r.failure_message else "")
