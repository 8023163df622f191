"""`farebox reprice` through a real process (L11): a tenant's periods, and every tenant with a progress bar."""

import subprocess
import sys

from support import subprocess_env


def _farebox(*args, env, cwd, check=True):
    return subprocess.run(
        [sys.executable, "-m", "farebox", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
    )


def test_L11_reprice_a_tenant_and_every_tenant_from_the_command_line(tmp_path):
    env = subprocess_env(FAREBOX_DATABASE_URL=f"sqlite:///{tmp_path / 'fb.db'}", COLUMNS="200")
    _farebox("migrate", env=env, cwd=tmp_path)
    _farebox("catalog", "load", "--bundled", env=env, cwd=tmp_path)
    _farebox("demo-data", env=env, cwd=tmp_path)

    one = _farebox("reprice", "--tenant", "demo-webinars", "--catalog", "attendee-credits", env=env, cwd=tmp_path)
    assert "demo-webinars: session-caps/pro -> pro (Pro, 1188.00 USD a year)" in one.stdout
    assert "invoiced 29.00 USD; would pay 1188.00 USD; change +1159.00 USD" in one.stdout

    every = _farebox("reprice", "--all", "--catalog", "session-caps", "--plan", "pro_plus", env=env, cwd=tmp_path)
    assert "3 tenant(s)" in every.stdout and "1 invoiced in another currency" in every.stdout
    assert "repricing" in every.stderr and "3/3" in every.stderr  # the progress bar

    wrong = _farebox(
        "reprice",
        "--tenant",
        "demo-webinars",
        "--catalog",
        "attendee-credits",
        "--plan",
        "gold",
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert wrong.returncode == 1 and "plan_not_found" in wrong.stderr
    neither = _farebox("reprice", "--catalog", "session-caps", env=env, cwd=tmp_path, check=False)
    assert neither.returncode == 2
