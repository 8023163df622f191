"""The CLI refuses an unknown tenant on every command that takes one, with exit code 1 and a message on
stderr, and a failed export leaves no folder behind (newuser.md D17)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from farebox.entrypoints.cli import app

COMMANDS = [
    ["notify", "outbox", "nope"],
    ["usage", "verify", "--tenant", "nope"],
    ["webhooks", "deliveries", "--tenant", "nope"],
    ["keys", "issue", "--tenant", "nope", "--role", "owner"],
    ["export", "--tenant", "nope"],
    ["reprice", "--tenant", "nope", "--catalog", "session-caps"],
]


@pytest.fixture
def run(fb, db_url, monkeypatch, tmp_path):
    monkeypatch.setenv("FAREBOX_DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    return lambda args: runner.invoke(app, args)


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_D17_an_unknown_tenant_is_refused_with_exit_1_and_a_message(run, args):
    result = run(args)
    assert result.exit_code == 1, result.output
    assert "not_found" in result.stderr and "Tenant not found" in result.stderr, result.output


def test_D17_a_failed_export_leaves_no_empty_folder(run, tmp_path):
    result = run(["export", "--tenant", "nope", "--out", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert not (tmp_path / "x").exists() and not (tmp_path / "export-nope").exists()
    (tmp_path / "mine").mkdir()
    assert run(["export", "--tenant", "nope", "--out", str(tmp_path / "mine")]).exit_code == 1
    assert (tmp_path / "mine").is_dir()  # a folder that was there before is left alone


def test_D17_a_known_tenant_still_works(run, fb):
    from factories import make_tenant

    make_tenant(fb, tenant_id="known")
    assert run(["usage", "verify", "--tenant", "known"]).exit_code == 0
    assert run(["notify", "outbox", "known"]).exit_code == 0
