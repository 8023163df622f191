"""Alerts (G12): every alert the seeds name, raised from the signals in docs/architecture.md, exactly once.

Each listener is tested by publishing its signal here, against a real
subscription made by `services.subscriptions.subscribe`; the seeds' own
numbers are the tests' numbers.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from farebox.alerts.services import notifications
from farebox.clocks import service as clocks
from farebox.events.signals import Signal, publish
from farebox.kernel.access import SYSTEM, Role
from farebox.storage.tables.alerts import notifications as notifications_table
from farebox.subscriptions import db as subscriptions_repo
from farebox.subscriptions.services import subscriptions
from farebox.tenants.db import tenants as tenants_repo
from farebox.tenants.services import tenants

from factories import clear_outbox, make_tenant, principal, usage_recorded


def emit(fb, signal_kind, tenant_id, subject, at=None, **data):
    with fb.uow() as uow:
        publish(uow, Signal(signal_kind, tenant_id, at or fb.clock.now(), subject=subject, data=data))
        uow.commit()


def alerts(fb, tenant_id="acme", *, invoices=False):
    """The tenant's alerts, without the real invoices' "invoice issued" (renewals on a test clock
    issue them) unless `invoices`."""
    return [a for a in notifications.all_alerts(fb, SYSTEM, tenant_id) if invoices or a.kind != "invoice_issued"]


def sub_for(fb, *, catalog, plan, tenant_id="acme"):
    """A subscribed tenant with a good card; the alerts of its first invoice are set aside."""
    make_tenant(fb, tenant_id=tenant_id)
    sub = subscriptions.subscribe(fb, SYSTEM, tenant_id, catalog=catalog, plan=plan, cause="test")
    clear_outbox(fb, tenant_id)
    return sub




def trial_sub(fb, *, tenant_id="acme", catalog="agent-sessions", plan="sme"):
    """A tenant on a trial started the real way (subscribe with trial=True publishes `trial_started`)."""
    if tenants_repo_get(fb, tenant_id) is None:
        make_tenant(fb, tenant_id=tenant_id)
    sub = subscriptions.subscribe(fb, SYSTEM, tenant_id, catalog=catalog, plan=plan, trial=True, cause="test")
    clear_outbox(fb, tenant_id)
    return sub


def tenants_repo_get(fb, tenant_id):
    with fb.uow(readonly=True) as uow:
        return tenants_repo.get_tenant(uow.conn, tenant_id)


def record(fb, sub, before, after, **kw):
    emit(fb, "usage.recorded", sub.tenant_id, sub.id, **usage_recorded(sub, before, after, **kw))


def test_T6_the_test_payload_of_usage_recorded_is_the_one_admission_publishes(fb):
    """Listener tests below publish `usage.recorded` by hand; its payload must be the real one, key for key."""
    from farebox.events import signals
    from farebox.metering.services import admission

    sub = sub_for(fb, catalog="agent-sessions", plan="sme")
    seen = []
    listener = signals.on("usage.recorded")(lambda uow, s: seen.append(s))
    try:
        admission.message(fb, SYSTEM, "acme", "c1", sender="customer")
    finally:
        signals._LISTENERS["usage.recorded"].remove(listener)
    real = seen[0].data
    made = usage_recorded(sub, 0, 1, included=600)
    assert {k: type(v) for k, v in made.items()} == {k: type(v) for k, v in real.items()}
    assert made == real


# --- A6: session limit at 80% and 100% of 600 --------------------------------------------
def test_A6_session_limit_alerts_at_480_and_600_of_600_each_once(fb):
    sub = sub_for(fb, catalog="agent-sessions", plan="sme")
    for n in range(470, 605):
        record(fb, sub, n, n + 1, included=600)
    record(fb, sub, 479, 480, included=600)  # the same crossing seen again raises nothing
    fired = [(a.kind, a.data["percent"], a.data["used"], a.title) for a in alerts(fb)]
    assert fired == [
        ("session_limit", 80, 480, "Session limit almost reached"),
        ("session_limit", 100, 600, "Session limit has been reached"),
    ]


def test_A6_a_jump_past_both_thresholds_raises_both_in_order(fb):
    sub = sub_for(fb, catalog="agent-sessions", plan="sme")
    record(fb, sub, 0, 700, included=600)
    assert [a.data["percent"] for a in alerts(fb)] == [80, 100]


def test_A6_a_changed_session_limit_re_arms_the_alerts(fb):
    sub = sub_for(fb, catalog="agent-sessions", plan="sme")
    record(fb, sub, 479, 480, included=600)
    emit(fb, "usage.session_limit_changed", "acme", sub.id, before=600, after=1000)
    record(fb, sub, 799, 800, included=1000)
    assert [(a.data["limit"], a.data["percent"]) for a in alerts(fb)] == [(600, 80), (1000, 80)]


def test_A6_alerts_measure_against_the_tenants_own_limit_through_admission(fb):
    """A6: with a limit of 10 sessions set by the tenant, real messages warn at 8 and at 10 of 10."""
    from farebox.metering.services import admission, usage

    sub_for(fb, catalog="agent-sessions", plan="sme")
    usage.set_session_limit(fb, SYSTEM, "acme", 10)
    for i in range(11):
        admission.message(fb, SYSTEM, "acme", f"c{i}", sender="customer")
    fired = [(a.kind, a.data["limit"], a.data["used"]) for a in alerts(fb) if a.kind == "session_limit"]
    assert fired == [("session_limit", 10, 8), ("session_limit", 10, 10)]


def test_A3_A6_a_trial_gets_trial_reminders_not_session_limit_alerts(fb):
    """During a trial the 50-session bound is the trial's (A3: 60% and 90%), not a session limit (A6)."""
    from farebox.metering.services import admission

    trial_sub(fb)
    for i in range(46):
        admission.message(fb, SYSTEM, "acme", f"c{i}", sender="customer")
    kinds = [(a.kind, a.data.get("used")) for a in alerts(fb) if a.kind in ("session_limit", "trial_usage")]
    assert kinds == [("trial_usage", 30), ("trial_usage", 45)]


def test_G12_next_period_alerts_again(fb):
    sub = sub_for(fb, catalog="agent-sessions", plan="sme")
    record(fb, sub, 479, 480, included=600)
    record(fb, sub, 479, 480, included=600, period_start=sub.period.end)
    assert len(alerts(fb)) == 2


# --- L6, L8: credits before the limit and when exceeded; milder on Enterprise ----------------
def test_L6_credit_alerts_before_the_limit_and_when_reached(fb):
    sub = sub_for(fb, catalog="attendee-credits", plan="pro")
    record(fb, sub, 959, 960, meter="credits", included=1200)
    record(fb, sub, 1199, 1200, meter="credits", included=1200)
    got = alerts(fb)
    assert [(a.kind, a.data["percent"]) for a in got] == [("usage_threshold", 80), ("usage_threshold", 100)]
    assert got[0].title == "Credit limit almost reached"
    assert (
        got[0].body
        == "You have used 960 of your 1200 credits this period (80%). Upgrade your plan to avoid interruptions."
    )
    assert got[1].title == "Credit limit reached" and got[1].severity == "critical"


def test_L8_enterprise_gets_milder_wording(fb):
    sub = sub_for(fb, catalog="attendee-credits", plan="enterprise")
    record(fb, sub, 0, 8000, meter="credits", included=10000)
    record(fb, sub, 9999, 10001, meter="credits", included=10000)
    got = alerts(fb)
    assert [a.title for a in got] == [
        "You have used 80% of your included credits",
        "You have used the 10000 credits included in your plan",
    ]
    assert all(a.severity == "info" and a.data["tone"] == "mild" for a in got)
    assert "Nothing stops" in got[1].body


# --- A3: trial reminders at 30 and 45 of 50 sessions; 7 and 2 days left; trial ended --------
def test_A3_trial_usage_reminders_at_30_and_45_of_50(fb):
    sub = trial_sub(fb)
    for n in range(0, 50):
        record(fb, sub, n, n + 1)
    trial = [a for a in alerts(fb) if a.kind == "trial_usage"]
    assert [(a.data["percent"], a.data["used"]) for a in trial] == [(60, 30), (90, 45)]
    assert trial[0].title == "You have used 60% of your trial sessions"


def test_A3_no_trial_usage_reminders_after_the_trial(fb):
    sub = sub_for(fb, catalog="agent-sessions", plan="sme")  # active, not trialing
    record(fb, sub, 29, 30)
    assert [a for a in alerts(fb) if a.kind == "trial_usage"] == []


def test_A3_days_left_fire_once_each_in_order_when_a_test_clock_jumps_past_both(fb):
    clock = clocks.create(fb, SYSTEM, name="trial", start=datetime(2027, 3, 1, 10, tzinfo=timezone.utc))
    make_tenant(fb, tenant_id="acme")
    clocks.attach(fb, SYSTEM, clock["id"], "acme")
    sub = trial_sub(fb)
    ends = sub.trial_ends_at
    clocks.advance(fb, SYSTEM, clock["id"], by=timedelta(days=13))
    clocks.advance(fb, SYSTEM, clock["id"], by=timedelta(hours=1))
    days_left = [a for a in alerts(fb) if a.kind == "trial_days_left"]
    assert [(a.data["days"], a.created_at) for a in days_left] == [
        (7, ends - timedelta(days=7)),
        (2, ends - timedelta(days=2)),
    ]
    assert [a.title for a in days_left] == ["7 days left in your trial", "2 days left in your trial"]


def test_A3_trial_ended_once_and_pending_reminders_dropped(fb):
    clock = clocks.create(fb, SYSTEM, name="trial", start=datetime(2027, 3, 1, 10, tzinfo=timezone.utc))
    make_tenant(fb, tenant_id="acme")
    clocks.attach(fb, SYSTEM, clock["id"], "acme")
    sub = trial_sub(fb)
    with fb.uow() as uow:
        subscriptions_repo.update_subscription(uow.conn, "acme", sub.id, status="expired")
        publish(
            uow,
            Signal(
                "subscription.trial_ended",
                "acme",
                sub.starts_at + timedelta(days=1),
                subject=sub.id,
                data={"cause": "usage", "to_status": "expired"},
            ),
        )
        publish(
            uow,
            Signal(
                "subscription.trial_ended",
                "acme",
                sub.starts_at + timedelta(days=1),
                subject=sub.id,
                data={"cause": "usage", "to_status": "expired"},
            ),
        )
        uow.commit()
    clocks.advance(fb, SYSTEM, clock["id"], by=timedelta(days=20))
    got = alerts(fb)
    assert [a.kind for a in got] == ["trial_ended"]
    assert (
        got[0].body == "Your free trial has ended. Your subscription has ended. Please upgrade your plan to continue."
    )


# --- S5, S6 ----------------------------------------------------------------------------
def test_S5_host_told_once_when_an_occurrence_goes_over_its_cap(fb):
    sub_for(fb, catalog="session-caps", plan="pro")
    for count in (501, 502):
        emit(fb, "usage.cap_exceeded", "acme", "occ_1", meter="attendees", limit=500, count=count, policy="soft")
    got = alerts(fb)
    assert [a.kind for a in got] == ["cap_exceeded"]
    assert got[0].title == "Attendee limit exceeded: upgrade required"
    assert "over your plan's limit of 500" in got[0].body


def test_S6_ten_minutes_left_once_per_occurrence(fb):
    sub_for(fb, catalog="session-caps", plan="pro")
    deadline = fb.clock.now() + timedelta(minutes=10)
    emit(fb, "occurrence.ending_soon", "acme", "occ_1", deadline=deadline, minutes_left=10)
    emit(fb, "occurrence.ending_soon", "acme", "occ_1", deadline=deadline.isoformat(), minutes_left=10)
    got = alerts(fb)
    assert [a.title for a in got] == ["10 minutes left"]


# --- G9, G8, G7, G13 ----------------------------------------------------------------------
def test_G9_payment_failed_grace_ending_and_grace_expired(fb):
    clock = clocks.create(fb, SYSTEM, name="dunning", start=datetime(2027, 3, 1, 10, tzinfo=timezone.utc))
    make_tenant(fb, tenant_id="acme")
    clocks.attach(fb, SYSTEM, clock["id"], "acme")
    sub = subscriptions.subscribe(fb, SYSTEM, "acme", catalog="agent-sessions", plan="sme")
    grace_ends = sub.starts_at + timedelta(days=7)
    with fb.uow() as uow:
        subscriptions_repo.update_subscription(
            uow.conn, "acme", sub.id, status="payment_issue", grace_ends_at=grace_ends
        )
        publish(
            uow,
            Signal(
                "subscription.payment_issue",
                "acme",
                sub.starts_at,
                subject=sub.id,
                data={"grace_ends_at": grace_ends.isoformat(), "invoice_id": "inv_1"},
            ),
        )
        uow.commit()
    clocks.advance(fb, SYSTEM, clock["id"], by=timedelta(days=7))
    emit(fb, "subscription.grace_expired", "acme", sub.id, at=grace_ends)
    emit(fb, "subscription.grace_expired", "acme", sub.id, at=grace_ends)
    got = alerts(fb)
    assert [a.kind for a in got] == ["payment_failed", "grace_ending", "grace_expired"]
    assert got[1].created_at == grace_ends - timedelta(days=2)
    assert (
        got[2].body
        == "Your payment is overdue and the grace period has expired. New attendees and sessions are refused until you "
           "pay."
    )


def test_G9_settled_payment_drops_the_grace_reminder(fb):
    clock = clocks.create(fb, SYSTEM, name="dunning", start=datetime(2027, 3, 1, 10, tzinfo=timezone.utc))
    make_tenant(fb, tenant_id="acme")
    clocks.attach(fb, SYSTEM, clock["id"], "acme")
    sub = subscriptions.subscribe(fb, SYSTEM, "acme", catalog="agent-sessions", plan="sme")
    emit(
        fb,
        "subscription.payment_issue",
        "acme",
        sub.id,
        at=sub.starts_at,
        grace_ends_at=(sub.starts_at + timedelta(days=7)).isoformat(),
        invoice_id="inv_1",
    )
    emit(fb, "subscription.payment_settled", "acme", sub.id, at=sub.starts_at + timedelta(days=1), invoice_id="inv_1")
    clocks.advance(fb, SYSTEM, clock["id"], by=timedelta(days=8))
    assert [a.kind for a in alerts(fb)] == ["payment_failed", "payment_settled"]


def test_G8_cancellation_scheduled_then_effective(fb):
    sub = sub_for(fb, catalog="attendee-credits", plan="pro")
    emit(fb, "subscription.cancellation_scheduled", "acme", sub.id, effective_at=sub.period.end)
    emit(fb, "subscription.canceled", "acme", sub.id, to="free", retention_until=None)
    emit(fb, "subscription.canceled", "acme", sub.id, to="free", retention_until=None)
    got = alerts(fb)
    assert [a.kind for a in got] == ["cancellation_scheduled", "canceled"]
    assert got[0].title == "Cancellation scheduled" and "you can reactivate it" in got[0].body
    assert got[1].body == "Your subscription has ended; your account is now on the free plan."


def test_G7_upcoming_plan_change_and_change_applied(fb):
    sub = sub_for(fb, catalog="agent-sessions", plan="sme")
    with fb.uow(readonly=True) as uow:
        from farebox.catalog import db as catalog_repo

        enterprise = catalog_repo.current_plan_version(uow.conn, "agent-sessions", "enterprise")
    emit(
        fb,
        "subscription.plan_change_scheduled",
        "acme",
        "sub_upcoming",
        current_subscription_id=sub.id,
        to_plan_version_id=enterprise["id"],
        starts_at=sub.period.end,
    )
    emit(
        fb,
        "subscription.plan_changed",
        "acme",
        "sub_upcoming",
        from_subscription_id=sub.id,
        from_plan_version_id=sub.plan_version_id,
        to_plan_version_id=enterprise["id"],
        upgrade=True,
        immediate=False,
        new_period_start=sub.period.end.isoformat(),
    )
    got = alerts(fb)
    assert [a.kind for a in got] == ["plan_change_scheduled", "plan_changed"]
    assert got[0].body.startswith("Your plan changes to Enterprise on ")
    assert got[1].title == "Plan changed"


def test_G13_invoice_issued_in_the_invoice_currency(fb):
    sub = sub_for(fb, catalog="agent-sessions", plan="sme")
    emit(
        fb,
        "invoice.issued",
        "acme",
        "inv_1",
        subscription_id=sub.id,
        number="FB-000001",
        total_minor=15000,
        currency="EUR",
        kind="subscription",
    )
    emit(
        fb,
        "invoice.issued",
        "acme",
        "inv_1",
        subscription_id=sub.id,
        number="FB-000001",
        total_minor=15000,
        currency="EUR",
        kind="subscription",
    )
    got = alerts(fb, invoices=True)
    assert [(a.title, a.body) for a in got] == [
        ("Invoice FB-000001 issued", "Invoice FB-000001 for 150.00 EUR has been issued.")
    ]


# --- channels, recipients, in-app list ---------------------------------------------------
def test_G12_email_goes_to_owners_admins_and_the_billing_recipient(fb):
    sub = sub_for(fb, catalog="agent-sessions", plan="sme")
    tenants.add_member(fb, SYSTEM, "acme", email="admin@acme.test", role=Role.ADMIN)
    tenants.add_member(fb, SYSTEM, "acme", email="member@acme.test", role=Role.MEMBER)
    with fb.uow() as uow:
        tenants_repo.update_tenant(uow.conn, "acme", billing_email="billing@acme.test")
        uow.commit()
    record(fb, sub, 479, 480, included=600)
    from farebox.alerts.services import delivery

    outbox = delivery.email_outbox(fb, SYSTEM, "acme")
    assert sorted(m.to for m in outbox) == ["admin@acme.test", "billing@acme.test", "owner@acme.test"]
    assert all(m.subject == "Session limit almost reached" and m.status == "pending" for m in outbox)
    assert "480 of your monthly limit of 600 sessions" in outbox[0].text


def test_G12_channels_off_for_the_operator_or_the_tenant(fb):
    from farebox.alerts.services import delivery

    sub = sub_for(fb, catalog="agent-sessions", plan="sme")
    notifications.set_channel(fb, SYSTEM, channel="email", enabled=False)
    notifications.set_channel(
        fb, principal(tenant_id="acme", role=Role.OWNER), tenant_id="acme", channel="in_app", enabled=False
    )
    record(fb, sub, 479, 480, included=600)
    assert delivery.email_outbox(fb, SYSTEM, "acme") == []
    assert notifications.list_notifications(fb, SYSTEM, "acme").items == []
    assert len(alerts(fb)) == 1  # still recorded once
    assert notifications.channels(fb, SYSTEM, "acme") == {"in_app": False, "email": True, "webhook": True}


def test_G6_in_app_list_unread_count_and_mark_read_for_owners_and_admins(fb):
    import pytest

    from farebox.kernel.reasons import DomainError

    sub = sub_for(fb, catalog="agent-sessions", plan="sme")
    record(fb, sub, 0, 600, included=600)
    owner = principal(tenant_id="acme", role=Role.OWNER)
    listed = notifications.list_notifications(fb, owner, "acme")
    assert listed.unread == 2 and [n.title for n in listed.items] == [
        "Session limit has been reached",
        "Session limit almost reached",
    ]
    notifications.mark_read(fb, owner, "acme", listed.items[0].id)
    assert notifications.unread_count(fb, owner, "acme") == 1
    assert notifications.mark_all_read(fb, principal(tenant_id="acme", role=Role.ADMIN), "acme") == 1
    assert notifications.list_notifications(fb, owner, "acme", unread_only=True).items == []
    with pytest.raises(DomainError) as refused:
        notifications.list_notifications(fb, principal(tenant_id="acme", role=Role.MEMBER), "acme")
    assert refused.value.code == "forbidden"
    with pytest.raises(DomainError) as hidden:
        notifications.list_notifications(fb, principal(tenant_id="other", role=Role.OWNER), "acme")
    assert hidden.value.code == "not_found"


def test_G12_an_alert_rolls_back_with_the_change_that_raised_it(fb):
    sub = sub_for(fb, catalog="agent-sessions", plan="sme")
    with fb.uow() as uow:
        publish(
            uow,
            Signal(
                "usage.recorded",
                "acme",
                fb.clock.now(),
                subject=sub.id,
                data=usage_recorded(sub, 479, 480, included=600),
            ),
        )
        written = uow.conn.execute(select(func.count()).select_from(notifications_table)).scalar_one()
        assert written == 1  # the listener wrote its alert in this transaction...
        # ...which is not committed: the change failed
    assert alerts(fb) == []
