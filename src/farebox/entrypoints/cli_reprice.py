"""`farebox reprice`: what tenants would have paid under another catalog (docs/repricing.md)."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from farebox.kernel.access import SYSTEM
from farebox.kernel.money import Money
from farebox.kernel.reasons import DomainError
from farebox.repricing.domain import Repricing

if TYPE_CHECKING:
    from farebox.repricing.service import RepriceSummary, TenantRepricing

console = Console()
err = Console(stderr=True)


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date (2026-01-31) or an instant (2026-01-31T09:00:00Z)") from None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _money(amounts: dict[str, int] | int, currency: str | None = None) -> str:
    if isinstance(amounts, int):
        return Money(amounts, currency or "USD").format()
    return ", ".join(Money(v, c).format() for c, v in sorted(amounts.items()) if v) or "-"


def _signed(amount: int | None, currency: str) -> str:
    if amount is None:
        return "(other currency)"
    text = Money(amount, currency).format()
    return f"+{text}" if amount > 0 else text


def reprice_command(
    tenant: str = typer.Option(None, "--tenant", help="The tenant to replay"),
    catalog: str = typer.Option(..., "--catalog", help="The new catalog: a loaded or bundled name, or a catalog file"),
    plan: str = typer.Option(
        None, "--plan", help="The new catalog's plan (default: the tenant's plan code, else its tier position)"
    ),
    since: str = typer.Option(
        None, "--from", help="Start with the period containing this date (default: the tenant's first period)"
    ),
    all_tenants: bool = typer.Option(False, "--all", help="Every tenant, with a summary"),
    batch_size: int = typer.Option(500, help="Tenants read per batch (--all)"),
) -> None:
    """Replay recorded usage under another catalog: invoiced vs would pay, period by period, and the limits it would
    hit (L11)."""
    from farebox.bootstrap import bootstrap
    from farebox.repricing import service

    if (tenant is None) == (not all_tenants):
        err.print("give either --tenant T or --all")
        raise typer.Exit(2)
    fb = bootstrap()
    try:
        if all_tenants:
            columns = (
                TextColumn("repricing"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            )
            started = time.perf_counter()
            with Progress(*columns, console=err) as progress:
                task = progress.add_task("repricing", total=None)
                summary = service.reprice_all(
                    fb, SYSTEM, catalog=catalog, plan=plan, since=_since(since), batch_size=batch_size,
                    on_total=lambda n: progress.update(task, total=n), on_progress=lambda n: progress.advance(task, n),
                )
            _print_summary(summary, time.perf_counter() - started)
        else:
            _print_tenant(service.reprice_tenant(fb, SYSTEM, tenant, catalog=catalog, plan=plan, since=_since(since)))
    except DomainError as exc:
        err.print(f"[red]refused[/red] {exc.code}: {exc.refusal.message}")
        raise typer.Exit(1) from None


def _print_tenant(item: TenantRepricing) -> None:
    r: Repricing = item.result
    was = f"{item.from_catalog}/{item.from_plan}" if item.from_plan else "no subscription"
    table = Table(
        title=f"{item.tenant_id}: {was} -> {r.plan.code} ({r.plan.name}, {r.plan.price.format()} a "
              f"{r.plan.interval.value}); amounts before tax"
    )
    for column in ("period", "invoiced", "would pay", "fee", "overage", "usage", "limits of the new plan"):
        table.add_column(column, overflow="fold")
    for p in r.periods:
        label = f"{p.period.start:%Y-%m-%d} to {p.period.end:%Y-%m-%d}" + ("" if p.complete else " (so far)")
        usage = ", ".join(
            [f"{k} {v}" for k, v in p.usage.items()] + [f"{k} up to {v} per occurrence" for k, v in p.highest.items()]
        )
        usage = f"{usage} ({p.occurrences} occurrence(s))" if p.highest else usage or "-"
        limits = "; ".join(h.describe() for h in p.hits) or "-"
        table.add_row(
            label,
            _money(dict(p.paid)),
            _money(p.would_pay_minor, r.currency),
            _money(p.fee_minor, r.currency),
            _money(p.overage_minor, r.currency),
            usage,
            limits,
        )
    console.print(table)
    if not r.periods:
        console.print("nothing to replay: no time on a subscription (trials are not replayed)")
        return
    console.print(
        f"invoiced {_money(r.paid)}; would pay {_money(r.would_pay_minor, r.currency)}; change "
        f"{_signed(r.change_minor, r.currency)}"
    )
    hits = r.hit_periods
    if hits:
        console.print(
            f"[yellow]{len(hits)} period(s) where a limit of {r.plan.code} would have refused someone or required an "
            f"upgrade:[/yellow] "
            + ", ".join(f"{p.period.start:%Y-%m-%d}" for p in hits)
        )
    else:
        console.print(f"no limit of {r.plan.code} would have been hit")


def _print_summary(summary: RepriceSummary, elapsed: float) -> None:
    table = Table(title=f"Every tenant under {summary.catalog}; amounts before tax")
    for column in ("currency", "invoiced", "would pay", "change"):
        table.add_column(column)
    for currency in sorted(set(summary.paid) | set(summary.would_pay)):
        change = summary.change(currency)
        table.add_row(
            currency,
            _money(summary.paid.get(currency, 0), currency),
            _money(summary.would_pay.get(currency, 0), currency),
            _signed(change, currency),
        )
    console.print(table)
    console.print(
        f"{summary.tenants} tenant(s) in {elapsed:.1f} s: {summary.paying_more} would pay more, {summary.paying_less} "
        f"less; "
        f"{summary.other_currency} invoiced in another currency (not compared); {summary.without_history} with nothing "
        f"to replay"
    )
    hits = summary.hitting_limits
    console.print(f"{len(hits)} tenant(s) would hit a limit")
    if hits:
        worst = Table(title="Tenants that would hit limits (most refused first, at most 20)")
        for column in ("tenant", "plan", "periods", "refused", "first"):
            worst.add_column(column, overflow="fold")
        for t in sorted(hits, key=lambda t: (-t.refused, -t.periods, t.tenant_id))[:20]:
            worst.add_row(t.tenant_id, t.plan, str(t.periods), str(t.refused), t.first)
        console.print(worst)
