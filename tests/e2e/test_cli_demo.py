"""`farebox demo` through a real process: the four stories told by the real services (S5, L2, L3, L7, A3, G9, A7)."""

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
        timeout=180,
        check=check,
    )


def test_demo_narrates_caps_credits_trial_and_grace_with_what_was_admitted_counted_alerted_and_invoiced(tmp_path):
    env = subprocess_env(COLUMNS="250")
    out = _farebox("demo", "--db", str(tmp_path / "demo.db"), env=env, cwd=tmp_path).stdout
    # S5: over the soft cap nobody is refused, the next start needs an upgrade, an upgrade lets it start
    assert "attendee joins launch #1-#500 (500 requests)" in out and "over its limit of 500 attendees" in out
    assert "upgrade_required" in out and "cap_exceeded" in out and "proration" in out
    # L2, L3, L7: the pool runs out across webinars; a returning attendee, registrations and members still get in
    assert "credits_exhausted: Your attendee credits for this period are used up." in out
    assert "already_counted" in out and "registered" in out and "not_billable_member" in out
    assert "Credit limit reached" in out and "of 1200, 0 left" in out
    # A3: the trial ends on its 50th session
    assert (
        "a customer writes in a new conversation #50 " in out
        and "trial_exhausted: Your subscription has ended. Please upgrade your plan to continue." in out
    )
    assert "You have used 60% of your trial sessions" in out and "Your trial has ended" in out
    # G9, A7: the declined renewal, grace with service, then G9's message
    assert "Payment issue" in out and "grace expired" in out
    assert "payment_overdue: Your payment is overdue and the grace period has expired." in out
    assert "150.00 EUR" in out and "open" in out and "1188.00 USD" in out
    assert "walk-through done in" in out and (tmp_path / "demo.db").exists()
    again = _farebox("demo", "--db", str(tmp_path / "demo.db"), env=env, cwd=tmp_path, check=False)
    assert again.returncode == 1 and "fresh database" in again.stderr
