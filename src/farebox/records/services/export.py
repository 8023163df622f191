"""A tenant's data export (the seeds advise exporting before cancelling, G14).

Every table that holds the tenant's records (usage, occurrences, conversations,
subscriptions and their history, invoices, payments, notifications, the audit
log, members...) is written as JSON Lines and as CSV, one file per table, plus
a manifest.  Credentials (API keys, sessions, stored idempotent answers) and
any column holding a secret or its hash are never exported.  The tenant is
read in one read-only transaction, so the files agree with each other.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from farebox.bootstrap import Farebox
from farebox.kernel import reasons
from farebox.kernel.access import Principal, require_billing_access
from farebox.kernel.reasons import DomainError
from farebox.records.db import export as repo
from farebox.tenants.db import tenants as tenants_repo

FORMATS = ("jsonl", "csv")


@dataclass
class ExportReport:
    tenant_id: str
    exported_at: datetime
    tables: dict[str, int] = field(default_factory=dict)  # table -> rows
    files: list[str] = field(default_factory=list)


def _text(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _write_table(rows: Any, columns: list[str], opened: dict[str, IO[str]], on_row: Callable[[], None] | None) -> int:
    n = 0
    writer = csv.DictWriter(opened["csv"], fieldnames=columns, extrasaction="ignore") if "csv" in opened else None
    if writer is not None:
        writer.writeheader()
    for row in rows:
        row = {k: _text(v) for k, v in row.items()}
        if "jsonl" in opened:
            opened["jsonl"].write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        if writer is not None:
            writer.writerow(
                {k: json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v for k, v in row.items()}
            )
        n += 1
        if on_row is not None:
            on_row()
    return n


def export_tenant(
    fb: Farebox,
    actor: Principal,
    tenant_id: str,
    sink: Callable[[str], IO[str]],
    *,
    formats: tuple[str, ...] = FORMATS,
    on_table: Callable[[str, int], None] | None = None,
    on_row: Callable[[], None] | None = None,
) -> ExportReport:
    """Write every exported table through `sink(filename)` (a text stream the caller closes)."""
    require_billing_access(actor, tenant_id)
    bad = set(formats) - set(FORMATS)
    if bad or not formats:
        raise DomainError(
            reasons.VALIDATION_ERROR, detail=f"formats are {', '.join(FORMATS)}", details={"field": "formats"}
        )
    report = ExportReport(tenant_id, fb.clock.now())
    with fb.uow(readonly=True) as uow:
        if tenants_repo.get_tenant(uow.conn, tenant_id) is None:
            raise DomainError(reasons.NOT_FOUND, what="Tenant")
        for table in repo.tenant_tables():
            if on_table is not None:
                on_table(table.name, repo.count(uow.conn, table, tenant_id))
            opened = {fmt: sink(f"{table.name}.{fmt}") for fmt in formats}
            report.tables[table.name] = _write_table(
                repo.rows(uow.conn, table, tenant_id), repo.exported_columns(table), opened, on_row
            )
            report.files.extend(f"{table.name}.{fmt}" for fmt in formats)
    manifest = sink("manifest.json")
    manifest.write(
        json.dumps(
            {
                "tenant_id": tenant_id,
                "exported_at": report.exported_at.isoformat(),
                "tables": report.tables,
                "formats": list(formats),
            },
            indent=2,
        )
        + "\n"
    )
    report.files.append("manifest.json")
    return report


def export_to_directory(fb: Farebox, actor: Principal, tenant_id: str, directory: Path, **kwargs: Any) -> ExportReport:
    directory.mkdir(parents=True, exist_ok=True)
    opened: list[IO[str]] = []

    def sink(name: str) -> IO[str]:
        stream = (directory / name).open("w", encoding="utf-8", newline="")
        opened.append(stream)
        return stream

    try:
        return export_tenant(fb, actor, tenant_id, sink, **kwargs)
    finally:
        for stream in opened:
            stream.close()


def export_zip(fb: Farebox, actor: Principal, tenant_id: str) -> bytes:
    """The same files in one zip archive (the API and the portal's download)."""
    buffers: dict[str, io.StringIO] = {}

    def sink(name: str) -> IO[str]:
        buffers[name] = io.StringIO(newline="")
        return buffers[name]

    export_tenant(fb, actor, tenant_id, sink)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, buffer in buffers.items():
            archive.writestr(f"{tenant_id}/{name}", buffer.getvalue())
    return out.getvalue()
