"""What the CLI prints is plain text a person can read and copy (newuser.md D10, D12)."""

from __future__ import annotations

from rich.console import Console

from farebox.demo.walkthrough import Chapter, Step
from farebox.entrypoints.cli_demo import render_chapter


def test_D10_demo_prints_no_in_red_not_as_literal_markup():
    chapter = Chapter(
        title="t", tenant_id="acme", steps=[Step("join [vip] #1", False, False, "credits_exhausted: [x]")]
    )
    console = Console(record=True, width=200, force_terminal=True, color_system="standard")
    render_chapter(console, chapter)
    text = console.export_text(styles=False, clear=False)
    assert "[red]" not in text and "[/red]" not in text
    assert "| no " in text.replace("│", "|") and "join [vip] #1" in text and "credits_exhausted: [x]" in text
    styled = console.export_text(styles=True)
    assert "\x1b[31mno" in styled  # red, as a style
