"""Rendering `farebox demo`'s chapters as Rich tables: what was admitted, counted, alerted and invoiced."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from farebox.demo.walkthrough import Chapter


def _mark(value: bool | None) -> Text:
    return Text("") if value is None else (Text("yes") if value else Text("no", style="red"))


def _table(title: str, columns: tuple[str, ...], rows: Sequence[tuple[str | Text, ...]]) -> Table:
    """Cells are shown as they are: a string is never read as Rich markup, a `Text` keeps its style."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(cell if isinstance(cell, Text) else Text(cell) for cell in row))
    return table


def render_chapter(console: Console, chapter: Chapter) -> None:
    console.print(Rule(f"[bold]{chapter.title}[/bold]"))
    for line in chapter.narration:
        console.print(escape(line))
    steps = [(s.what, _mark(s.admitted), _mark(s.counted), s.answer) for s in chapter.steps]
    console.print(
        _table(f"{chapter.tenant_id}: requests and answers", ("request", "admitted", "counted", "answer"), steps)
    )
    console.print(f"[bold]{chapter.tenant_id}[/bold] now: {escape(chapter.badge)}")
    console.print(_table("counted in the current period", ("meter", "used", "of"), chapter.usage or [("-", "-", "-")]))
    console.print(
        _table(
            "alerted (in-app; e-mail and webhooks carry the same when enabled)",
            ("at", "kind", "title"),
            chapter.alerts or [("-", "-", "-")],
        )
    )
    console.print(
        _table(
            "invoiced", ("number", "issued", "kind", "total", "status"), chapter.invoices or [("-", "-", "-", "-", "-")]
        )
    )
