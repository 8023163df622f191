"""The `farebox` command line (Typer + Rich)."""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from farebox.bootstrap import Farebox, bootstrap
from farebox.catalog.files import BUNDLED, CatalogError, load_catalog
from farebox.entrypoints.cli_credits import credits_app
from farebox.entrypoints.cli_entitlements import entitlements_app
from farebox.entrypoints.cli_export import export_command
from farebox.entrypoints.cli_reprice import reprice_command
from farebox.entrypoints.cli_scenario import scenario_app
from farebox.kernel.access import SYSTEM, Role
from farebox.kernel.reasons import DomainError

app = typer.Typer(help="farebox: billing, metering and admission control.", no_args_is_help=True, add_completion=False)
catalog_app = typer.Typer(help="Validate and load plan catalogs.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(keys_app, name="keys")
app.add_typer(scenario_app, name="scenario")
app.add_typer(entitlements_app, name="entitlements")
app.add_typer(credits_app, name="credits")
app.command("export")(export_command)
app.command("reprice")(reprice_command)
clock_app = typer.Typer(help="Test clocks (G2): move one forward and see what falls due.", no_args_is_help=True)
app.add_typer(clock_app, name="clock")
notify_app = typer.Typer(help="Alerts: deliver the outbox, show e-mails waiting in it.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Webhook endpoints, secrets, deliveries.", no_args_is_help=True)
app.add_typer(notify_app, name="notify")
app.add_typer(webhooks_app, name="webhooks")
console = Console()
err = Console(stderr=True)


def _fb() -> Farebox:
    return bootstrap()


def refuse(exc: DomainError) -> typer.Exit:
    """Print a refusal on stderr; the caller raises the returned exit (code 1)."""
    err.print(f"[red]refused[/red] {exc.code}: {escape(exc.refusal.message)}")
    return typer.Exit(1)


def known_tenant(fb: Farebox, tenant_id: str) -> None:
    """Refuse an unknown tenant with exit code 1 and a message, before a command finds nothing."""
    from farebox.tenants.services import tenants

    try:
        tenants.get_tenant(fb, SYSTEM, tenant_id)
    except DomainError as exc:
        raise refuse(exc) from None


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (Alembic)."""
    from farebox.storage.migrate import upgrade

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
            err.print(f"[red]invalid[/red] {escape(exc.source)}")
            for problem in exc.problems:
                err.print(f"  - {problem}", markup=False, highlight=False)  # YAML text, not Rich markup
            continue
        console.print(f"[green]valid[/green] {name}: catalog {catalog.name!r}, plans {', '.join(catalog.plans)}")
    raise typer.Exit(1 if failed else 0)


@catalog_app.command("load")
def catalog_load(
    sources: list[str] = typer.Argument(None, help="Catalog files or bundled names"),
    bundled: bool = typer.Option(False, "--bundled", help="Load every bundled catalog"),
) -> None:
    """Load catalogs into the database; a changed plan becomes a new version."""
    from farebox.catalog import service

    names = list(sources or []) + (list(BUNDLED) if bundled else [])
    if not names:
        err.print("name a catalog file or use --bundled")
        raise typer.Exit(2)
    fb = _fb()
    for name in names:
        try:
            report = service.load(fb, SYSTEM, name)
        except CatalogError as exc:
            err.print(f"[red]invalid[/red] {escape(str(exc))}")
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
    expires_in_days: int = typer.Option(None, min=1, help="Refused after this many days (default: until revoked)"),
) -> None:
    """Issue an API key and print it (it is shown only once)."""
    from datetime import timedelta

    from farebox.tenants.services import tenants

    fb = _fb()
    if tenant is not None:
        known_tenant(fb, tenant)
    expires_at = fb.clock.now() + timedelta(days=expires_in_days) if expires_in_days else None
    try:
        issued = tenants.issue_api_key(fb, SYSTEM, tenant_id=tenant, role=role, name=name, expires_at=expires_at)
    except DomainError as exc:
        raise refuse(exc) from None
    console.print(issued.secret)


@keys_app.command("list")
def keys_list(tenant: str = typer.Option(None, help="Tenant id; omit for the operator keys")) -> None:
    """API keys, one a line (never their secrets): id, role, active or not, name, created, expires, revoked."""
    from farebox.tenants.services import tenants

    def stamp(at: datetime | None) -> str:
        return at.isoformat(timespec="seconds") if at else "-"

    from farebox.kernel.reasons import DomainError

    try:
        keys = tenants.list_api_keys(_fb(), SYSTEM, tenant_id=tenant)
    except DomainError as exc:
        err.print(f"{exc.code}: {exc.refusal.message}", markup=False)
        raise typer.Exit(1) from None
    for k in keys:
        state = "active" if k.active else "inactive"
        console.print(f"{k.key_id} {k.role.value} {state} name={k.name or '-'} created={stamp(k.created_at)} "
                      f"expires={stamp(k.expires_at)} revoked={stamp(k.revoked_at)}", markup=False, soft_wrap=True)


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="The key id (the part before the dot)")) -> None:
    """Revoke a key at once, on every server process; portal sessions opened with it end too."""
    from farebox.kernel.reasons import DomainError
    from farebox.tenants.services import tenants

    try:
        tenants.revoke_api_key(_fb(), SYSTEM, key_id.partition(".")[0])
    except DomainError as exc:
        err.print(f"{exc.code}: {exc.refusal.message}", markup=False)
        raise typer.Exit(1) from None
    console.print(f"revoked {key_id.partition('.')[0]}", markup=False)


@keys_app.command("rotate")
def keys_rotate(
    key_id: str = typer.Argument(..., help="The key id"),
    grace_hours: float = typer.Option(
        0, min=0, max=168, help="Hours the old key keeps working (default: it stops now)"
    ),
) -> None:
    """Issue a key with the same tenant, role and name in place of this one, and print it."""
    from datetime import timedelta

    from farebox.kernel.reasons import DomainError
    from farebox.tenants.services import tenants

    fb = _fb()
    key_id = key_id.partition(".")[0]
    try:
        issued = tenants.rotate_api_key(fb, SYSTEM, key_id, grace=timedelta(hours=grace_hours))
    except DomainError as exc:
        err.print(f"{exc.code}: {exc.refusal.message}", markup=False)
        raise typer.Exit(1) from None
    console.print(issued.secret)


@app.command()
def demo(
    db: Path = typer.Option(
        None, "--db", help="Keep the demo's database in this new SQLite file (default: a temporary one)"
    ),
) -> None:
    """A narrated walk-through of the three bundled catalogs on a test clock, in a fresh embedded database."""
    from farebox.demo import walkthrough as demo_walkthrough
    from farebox.entrypoints.cli_demo import render_chapter

    started = time.perf_counter()
    try:
        result = demo_walkthrough.run(database=db, on_chapter=lambda chapter: render_chapter(console, chapter))
    except FileExistsError as exc:
        err.print(f"[red]refused[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"walk-through done in {time.perf_counter() - started:.1f} s; database: {result.database_url}")


@app.command("demo-data")
def demo_data() -> None:
    """Load the bundled catalogs and a demo tenant of each for `make run` (safe to run again)."""
    from farebox.demo import data as service

    fb = _fb()
    for report in service.load_catalogs(fb):
        console.print(
            f"catalog [bold]{report.catalog}[/bold]: {len(report.added)} new plan versions, {len(report.unchanged)} "
            f"unchanged"
        )
    table = Table(title="Demo tenants")
    for column in ("tenant", "catalog", "plan"):
        table.add_column(column)
    demo_tenants = service.load_demo(fb)
    for t in demo_tenants:
        table.add_row(t.tenant_id, t.catalog, t.plan)
    console.print(table)
    # one key per line, never wrapped, so it can be copied whole
    console.print("owner API keys (shown once, when the tenant is created):", soft_wrap=True)
    for t in demo_tenants:
        if t.owner_key:
            console.print(f"  {t.tenant_id}  {t.owner_key}", soft_wrap=True, markup=False, highlight=False)
        else:
            console.print(
                f"  {t.tenant_id}  (exists; a new key: farebox keys issue --tenant {t.tenant_id} --role owner)",
                soft_wrap=True, markup=False, highlight=False,
            )
    key, created = service.ensure_operator_key(fb, Path("var/operator-key"))
    origin = "new" if created else "from var/operator-key"
    console.print(f"operator API key ({origin}): {key}", soft_wrap=True, markup=False, highlight=False)


@app.command()
def serve(
    host: str = typer.Option(None, help="Default: FAREBOX_HOST or 127.0.0.1"),
    port: int = typer.Option(None, help="Default: FAREBOX_PORT or 8000"),
    workers: int = typer.Option(1, help="Server processes"),
    no_worker: bool = typer.Option(
        False, "--no-worker", help="Leave the due work and deliveries to dedicated `farebox worker` processes"
    ),
    interval: float = typer.Option(1.0, help="Seconds between the in-process worker's passes"),
) -> None:
    """Serve the API (OpenAPI at /docs, metrics at /metrics) and the portal; unless --no-worker, also run the
    worker's passes (renewals, trial ends, payment retries, e-mail and webhook delivery, billing) on a thread."""
    import logging

    import uvicorn

    from farebox.entrypoints.worker import BackgroundWorker

    fb = _fb()
    background = None
    if not no_worker:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
        worker_log = logging.getLogger("farebox.worker")
        worker_log.addHandler(handler)
        worker_log.setLevel(os.environ.get("FAREBOX_LOG_LEVEL", "info").upper())
        background = BackgroundWorker(fb, interval=interval)
        background.start()
        err.print(f"worker: running in this process, a pass every {interval:g} s (--no-worker to turn it off)")
    try:
        uvicorn.run(
            "farebox.entrypoints.api.asgi:app",
            host=host or fb.settings.host,
            port=port or fb.settings.port,
            workers=workers,
            log_level=os.environ.get("FAREBOX_LOG_LEVEL", "info"),
        )
    finally:
        if background is not None:
            background.stop()


@app.command()
def worker(
    once: bool = typer.Option(False, "--once", help="Process what is due now, then stop"),
    interval: float = typer.Option(1.0, help="Seconds between passes"),
    lease: float = typer.Option(60.0, help="Seconds a claimed delivery waits before another worker may retry it"),
) -> None:
    """Process due work (renewals, trial ends, grace ends, scheduled changes, retention) and deliver alerts."""
    from datetime import timedelta

    from farebox.entrypoints import worker as loop

    fb = _fb()

    def show(report: loop.PassReport) -> None:
        stamp = datetime.now().isoformat(timespec="seconds")
        sent = report.deliveries
        for delivery_id in sent.delivered + sent.retrying + sent.failed:
            outcome = (
                "delivered"
                if delivery_id in sent.delivered
                else "retrying"
                if delivery_id in sent.retrying
                else "failed"
            )
            console.print(f"{stamp} delivery {delivery_id}: {outcome}")
        for item in report.processed:
            console.print(f"{stamp} {item.tenant_id} {item.kind} {item.ref}: {item.outcome}")
        if report.invoiced:
            console.print(f"{stamp} billing pass: {report.invoiced} invoice(s) issued")

    def failed(_: BaseException) -> None:
        console.print(f"{datetime.now().isoformat(timespec='seconds')} worker pass failed; retrying in {interval}s")
        console.print_exception()

    if once:
        show(loop.run_pass(fb, lease=timedelta(seconds=lease)))
        return
    loop.run_forever(fb, interval=interval, lease=timedelta(seconds=lease), on_pass=show, on_error=failed)


@clock_app.command("advance")
def clock_advance(
    clock_id: str = typer.Argument(..., help="The test clock's id"),
    by: str = typer.Option(None, "--by", help="A duration: 36h, 14d, 1h30m"),
    to: str = typer.Option(None, "--to", help="An ISO instant with its zone, e.g. 2027-01-01T00:00:00Z"),
) -> None:
    """Advance a test clock; everything due in between runs in order, each at its own time."""
    from farebox.clocks import service as clocks
    from farebox.kernel.periods import parse_duration

    try:
        delta = parse_duration(by) if by else None
        target = datetime.fromisoformat(to) if to else None
        report = clocks.advance(_fb(), SYSTEM, clock_id, by=delta, to=target)
    except (DomainError, ValueError) as exc:
        err.print(f"[red]refused[/red] {exc}")
        raise typer.Exit(1) from None
    for item in report.processed:
        console.print(f"{item.due_at.isoformat()} {item.tenant_id} {item.kind} {item.ref}: {item.outcome}")
    console.print(
        f"clock {clock_id}: {report.from_at.isoformat()} -> {report.to_at.isoformat()} ({len(report.processed)} due "
        f"items)"
    )


@notify_app.command("deliver")
def notify_deliver(limit: int = typer.Option(1000, help="At most this many deliveries")) -> None:
    """One delivery pass: send the e-mails (with FAREBOX_SMTP_URL) and webhooks that are due."""
    from farebox.alerts.services import delivery

    report = delivery.deliver_pending(_fb(), limit=limit)
    console.print(f"delivered {len(report.delivered)}, retrying {len(report.retrying)}, failed {len(report.failed)}")


@notify_app.command("outbox")
def notify_outbox(tenant: str = typer.Argument(..., help="Tenant id")) -> None:
    """The tenant's e-mails (pending ones wait here when no SMTP server is set)."""
    from farebox.alerts.services import delivery

    fb = _fb()
    known_tenant(fb, tenant)
    for mail in delivery.email_outbox(fb, SYSTEM, tenant):
        console.print(f"[bold]{mail.status}[/bold] {mail.delivery_id} to {mail.to}: {mail.subject}")


@webhooks_app.command("add")
def webhooks_add(
    url: str, kinds: list[str] = typer.Option(None, "--kind", help="Only these alert kinds (repeat); default all")
) -> None:
    """Add an endpoint and print its signing secret (shown once)."""
    from farebox.alerts.services import webhook_endpoints

    endpoint = webhook_endpoints.create_endpoint(_fb(), SYSTEM, url=url, kinds=tuple(kinds or ()))
    console.print(f"{endpoint.id} {endpoint.url}")
    console.print(endpoint.secret)


@webhooks_app.command("list")
def webhooks_list() -> None:
    """Webhook endpoints."""
    from farebox.alerts.services import webhook_endpoints

    for endpoint in webhook_endpoints.list_endpoints(_fb(), SYSTEM):
        console.print(
            f"{endpoint.id} {endpoint.url} {'enabled' if endpoint.enabled else 'disabled'} "
            f"kinds={','.join(endpoint.kinds) or 'all'}"
        )


@webhooks_app.command("rotate")
def webhooks_rotate(
    endpoint_id: str, grace_hours: int = typer.Option(24, help="Hours the old secret keeps signing")
) -> None:
    """A new signing secret; the old one still signs for the grace window."""
    from datetime import timedelta

    from farebox.alerts.services import webhook_endpoints

    endpoint = webhook_endpoints.rotate_secret(_fb(), SYSTEM, endpoint_id, grace=timedelta(hours=grace_hours))
    console.print(endpoint.secret)


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    status: str = typer.Option(None, help="pending, delivered or failed"), tenant: str = typer.Option(None)
) -> None:
    """The delivery log."""
    from farebox.alerts.services import delivery

    fb = _fb()
    if tenant is not None:
        known_tenant(fb, tenant)
    for d in delivery.list_deliveries(fb, SYSTEM, tenant_id=tenant, status=status):
        console.print(
            f"{d.id} {d.tenant_id} {d.channel} {d.target} {d.status} attempts={d.attempts} {d.last_error or ''}"
        )


@webhooks_app.command("replay")
def webhooks_replay(delivery_id: str) -> None:
    """Send a delivery again (same webhook-id); the worker or `notify deliver` sends it."""
    from farebox.alerts.services import delivery

    d = delivery.replay(_fb(), SYSTEM, delivery_id)
    console.print(f"{d.id}: {d.status}")


@app.command()
def bill(batch_size: int = typer.Option(500, help="Subscriptions per committed batch")) -> None:
    """Invoice and charge every subscription due (resumable: run it again after a crash)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from farebox.invoicing.services import billing_run

    fb = _fb()
    total = billing_run.due_count(fb)
    columns = (TextColumn("billing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    started = time.perf_counter()
    with Progress(*columns, console=err) as progress:
        task = progress.add_task("billing", total=total)
        report = billing_run.run(fb, SYSTEM, batch_size=batch_size, on_progress=lambda n: progress.advance(task, n))
    elapsed = time.perf_counter() - started
    console.print(f"examined {report.examined} subscription(s), issued {report.invoiced} invoice(s) in {elapsed:.1f} s")
usage_app = typer.Typer(help="Usage counters.", no_args_is_help=True)
app.add_typer(usage_app, name="usage")


@usage_app.command("verify")
def usage_verify(tenant: str = typer.Option(None, help="Only this tenant")) -> None:
    """Recompute every usage counter from the recorded units (G3); exit 1 on any difference."""
    from farebox.metering.services import usage as service

    fb = _fb()
    if tenant is not None:
        known_tenant(fb, tenant)
    differences = service.verify(fb, SYSTEM, tenant)
    for d in differences:
        err.print(f"[red]differs[/red] {d}")
    if differences:
        raise typer.Exit(1)
    console.print("[green]ok[/green] every counter equals its recorded units")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except DomainError as exc:  # a refusal a command did not handle itself: its message, exit code 1
        refuse(exc)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
