"""`farebox credits show` and `farebox credits refund` (issue 14 #5, audit #5), as a subprocess on a file database."""

import subprocess
import sys

from farebox.bootstrap import Farebox
from farebox.demo import data as demo
from farebox.kernel.access import SYSTEM
from farebox.kernel.clock import FrozenClock
from farebox.settings import Settings
from farebox.storage.engine import make_engine
from farebox.storage.migrate import upgrade
from farebox.subscriptions.services import subscriptions as subs

from factories import make_tenant
from support import START, subprocess_env


def _farebox(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "farebox", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_audit5_the_operator_shows_and_refunds_a_credit_balance_from_the_command_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'fb.db'}"
    engine = make_engine(url)
    upgrade(engine)
    fb = Farebox(engine=engine, clock=FrozenClock(START), settings=Settings(database_url=url, operator_key="k"))
    demo.load_catalogs(fb)
    make_tenant(fb, tenant_id="acme", catalog="session-caps", plan="pro_plus")  # sandbox card that pays
    subs.change_plan(fb, SYSTEM, "acme", plan="pro", when="immediately")  # at once: the whole 30.00 difference back
    engine.dispose()
    env = subprocess_env(FAREBOX_DATABASE_URL=url)

    shown = _farebox("credits", "show", "acme", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "balance 30.00 USD" in shown.stdout and "credit note FB-CN-2026-000001" in shown.stdout
    part = _farebox("credits", "refund", "acme", "--amount-minor", "1000", env=env)
    assert part.returncode == 0 and "10.00 USD succeeded" in part.stdout
    rest = _farebox("credits", "refund", "acme", env=env)
    assert rest.returncode == 0 and "20.00 USD succeeded" in rest.stdout
    none = _farebox("credits", "refund", "acme", env=env)
    assert none.returncode == 1 and "no credit balance" in none.stderr.lower()
    assert "balance none" in _farebox("credits", "show", "acme", env=env).stdout
