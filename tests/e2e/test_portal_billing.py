"""The Billing tab through HTTP (no JavaScript): cards and badges (G11), plan changes
with the *Apply subscription updates* dialog (G7), the Upcoming card and *Cancel
scheduled plan*, sales requests (S1, A5), the session limit (A6), credit gauge
(L6), the G9/G10 messages, notifications, export; members get 403 on all (G6)."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from farebox.clocks import service as clocks
from farebox.entrypoints.api.app import create_app
from farebox.entrypoints.portal.web import SESSION_COOKIE
from farebox.events import signals
from farebox.events.signals import Signal
from farebox.kernel.access import SYSTEM, Principal, Role
from farebox.metering.services import admission
from farebox.subscriptions.services import subscriptions
from farebox.tenants.services import sign_in as portal_auth
from farebox.tenants.services import tenants

from factories import make_tenant


@pytest.fixture
def client(fb):
    with TestClient(create_app(fb), follow_redirects=False) as c:
        yield c


def as_role(fb, client, tenant_id: str, role: Role) -> str:
    """Sign `client` in as the tenant's `role`; returns the CSRF token."""
    if role is not Role.OWNER:
        tenants.add_member(fb, SYSTEM, tenant_id, email=f"{role.value}@{tenant_id}.test", role=role)
    opened = portal_auth._open_session(fb, Principal(role, tenant_id=tenant_id, email=f"{role.value}@{tenant_id}.test"))
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, opened.token)
    return opened.csrf_token


def badge(html: str) -> str:
    return re.search(r'data-badge="([^"]+)"', html).group(1)


def test_G11_A3_trial_card_shows_badge_trial_sessions_and_days_left(fb, client):
    make_tenant(fb, tenant_id="acme")
    subscriptions.subscribe(fb, SYSTEM, "acme", catalog="agent-sessions", plan="sme", trial=True)
    as_role(fb, client, "acme", Role.OWNER)
    page = client.get("/portal/t/acme/billing")
    assert page.status_code == 200
    assert badge(page.text) == "Trial subscription"
    assert re.search(r'data-field="trial-sessions-left">50<', page.text)
    assert re.search(r'data-field="trial-days-left">14<', page.text)
    assert "Session limit" not in page.text  # A6: not on the free trial
    assert "Book a demo" in page.text  # A5: Enterprise


def test_G11_trial_ending_soon_then_G10_message_when_it_ends(fb, client, clock):
    make_tenant(fb, tenant_id="acme")
    subscriptions.subscribe(fb, SYSTEM, "acme", catalog="agent-sessions", plan="sme", trial=True)
    clock_id = clocks.create(fb, SYSTEM, name="t", start=clock.now())["id"]
    clocks.attach(fb, SYSTEM, clock_id, "acme")
    as_role(fb, client, "acme", Role.ADMIN)
    clocks.advance(fb, SYSTEM, clock_id, by=timedelta(days=12))
    page = client.get("/portal/t/acme/billing").text
    assert badge(page) == "Trial ending soon" and "Trial ending soon" in page
    clocks.advance(fb, SYSTEM, clock_id, by=timedelta(days=3))
    page = client.get("/portal/t/acme/billing").text
    assert badge(page) == "Expired subscription"
    assert "Your subscription has ended. Please upgrade your plan to continue." in page


def test_G7_subscribe_from_trial_then_schedule_downgrade_see_upcoming_and_cancel_it(fb, client):
    make_tenant(fb, tenant_id="acme")
    subscriptions.subscribe(fb, SYSTEM, "acme", catalog="agent-sessions", plan="sme", trial=True)
    csrf = as_role(fb, client, "acme", Role.OWNER)
    dialog = client.get("/portal/t/acme/billing/plans/sme")
    assert dialog.status_code == 200 and "Subscribe to SME" in dialog.text
    r = client.post("/portal/t/acme/billing/subscribe", data={"csrf_token": csrf, "plan": "sme", "when": "immediately"})
    assert r.status_code == 303
    page = client.get(r.headers["location"]).text
    assert badge(page) == "Active subscription" and "Next billing date" in page
    dialog = client.get("/portal/t/acme/billing/plans/playground").text
    for words in (
        "Apply subscription updates",
        "Immediately",
        "End of the current period",
        "On custom date",
        "Update subscription",
    ):
        assert words in dialog
    r = client.post(
        "/portal/t/acme/billing/subscribe", data={"csrf_token": csrf, "plan": "playground", "when": "end_of_period"}
    )
    assert r.headers["location"].endswith("done=scheduled")
    page = client.get("/portal/t/acme/billing").text
    assert "Upcoming subscription" in page and "Starts on" in page
    confirm = client.get("/portal/t/acme/billing/upcoming/cancel").text
    assert "Cancel scheduled plan" in confirm and "Playground" in confirm
    r = client.post("/portal/t/acme/billing/upcoming/cancel", data={"csrf_token": csrf})
    assert r.status_code == 303
    page = client.get(r.headers["location"]).text
    assert "Upcoming subscription" not in page and "scheduled plan change is cancelled" in page


def test_G7_change_on_a_custom_date_and_a_past_date_is_refused(fb, client, clock):
    make_tenant(fb, tenant_id="acme", catalog="session-caps", plan="pro_plus")
    csrf = as_role(fb, client, "acme", Role.OWNER)
    day = (clock.now() + timedelta(days=10)).date().isoformat()
    r = client.post(
        "/portal/t/acme/billing/subscribe", data={"csrf_token": csrf, "plan": "pro", "when": "custom_date", "date": day}
    )
    assert r.headers["location"].endswith("done=scheduled")
    assert subscriptions.upcoming(fb, SYSTEM, "acme").starts_at.date().isoformat() == day
    past = (clock.now() - timedelta(days=1)).date().isoformat()
    r = client.post(
        "/portal/t/acme/billing/subscribe",
        data={"csrf_token": csrf, "plan": "pro", "when": "custom_date", "date": past},
    )
    assert 'data-code="change_date_in_past"' in r.text


def test_S1_A5_contact_sales_and_book_a_demo_answer_request_received(fb, client):
    make_tenant(fb, tenant_id="acme", catalog="session-caps", plan="pro")
    csrf = as_role(fb, client, "acme", Role.OWNER)
    page = client.get("/portal/t/acme/billing").text
    assert "Contact sales" in page
    r = client.post("/portal/t/acme/billing/sales-requests", data={"csrf_token": csrf, "plan": "business"})
    assert "Request received" in client.get(r.headers["location"]).text


def test_A6_session_limit_refuses_zero_then_warns_at_80_and_100_percent(fb, client):
    make_tenant(fb, tenant_id="acme", catalog="agent-sessions", plan="sme")
    csrf = as_role(fb, client, "acme", Role.OWNER)
    assert "Session limit" in client.get("/portal/t/acme/billing").text
    for bad in ("0", "-3", "ten"):
        r = client.post("/portal/t/acme/billing/session-limit", data={"csrf_token": csrf, "sessions": bad})
        assert "The session limit must be a whole number greater than zero." in r.text
    r = client.post("/portal/t/acme/billing/session-limit", data={"csrf_token": csrf, "sessions": "10"})
    assert r.status_code == 303
    for i in range(8):
        admission.message(fb, SYSTEM, "acme", f"conv-{i}", sender="customer")
    page = client.get("/portal/t/acme/billing").text
    assert "Session limit almost reached" in page and "8 of 10 sessions used" in page
    for i in range(8, 10):
        admission.message(fb, SYSTEM, "acme", f"conv-{i}", sender="customer")
    page = client.get("/portal/t/acme/billing").text
    limit_card = page.split('<section class="card limit"')[1].split("</section>")[0]
    assert "Session limit has been reached" in limit_card and "almost" not in limit_card
    notes = page.split('id="notes-title"')[1]  # the in-app notifications of both alerts (A6, G12)
    assert "Session limit almost reached" in notes and "Session limit has been reached" in notes
    assert "<svg" in page and "conv-0" in page  # the chart and the largest conversations
    r = client.post("/portal/t/acme/billing/session-limit/reset", data={"csrf_token": csrf})
    page = client.get(r.headers["location"]).text
    limit_card = page.split('<section class="card limit"')[1].split("</section>")[0]
    assert "base limit applies (600)" in limit_card and "Session limit has been reached" not in limit_card


def test_L6_attendee_credit_gauge(fb, client):
    make_tenant(fb, tenant_id="acme", catalog="attendee-credits", plan="free")
    as_role(fb, client, "acme", Role.OWNER)
    admission.start_occurrence(fb, SYSTEM, "acme", "occ-1")
    for i in range(25):
        admission.join(fb, SYSTEM, "acme", "occ-1", f"p{i}")
    page = client.get("/portal/t/acme/billing").text
    assert "Attendee credits" in page and "25 of 30 credits used (83%)" in page and "5 left" in page
    assert "Attendee credits almost used up." in page


def test_G9_A7_payment_pending_banner_then_overdue_message(fb, client, clock):
    make_tenant(fb, tenant_id="acme", catalog="agent-sessions", plan="sme")
    sub = subscriptions.current(fb, SYSTEM, "acme")
    clock_id = clocks.create(fb, SYSTEM, name="t", start=clock.now())["id"]
    clocks.attach(fb, SYSTEM, clock_id, "acme")
    as_role(fb, client, "acme", Role.OWNER)
    with fb.uow() as uow:  # invoicing tells lifecycle a renewal payment failed
        signals.publish(
            uow,
            Signal(
                "invoice.payment_failed",
                "acme",
                clock.now(),
                "system",
                "inv_1",
                {"subscription_id": sub.id, "renewal": True, "reason": "card_declined"},
            ),
        )
        uow.commit()
    page = client.get("/portal/t/acme/billing").text
    assert badge(page) == "Payment issue" and "Payment pending" in page
    clocks.advance(fb, SYSTEM, clock_id, by=timedelta(days=8))
    page = client.get("/portal/t/acme/billing").text
    assert "Your payment is overdue and the grace period has expired." in page


def test_G8_cancel_with_confirmation_then_reactivate(fb, client):
    make_tenant(fb, tenant_id="acme", catalog="session-caps", plan="pro")
    csrf = as_role(fb, client, "acme", Role.OWNER)
    assert "Cancel subscription" in client.get("/portal/t/acme/billing/cancel").text
    r = client.post("/portal/t/acme/billing/cancel", data={"csrf_token": csrf})
    page = client.get(r.headers["location"]).text
    assert badge(page) == "Canceled subscription" and "Expires on" in page and "Reactivate" in page
    r = client.post("/portal/t/acme/billing/reactivate", data={"csrf_token": csrf})
    assert badge(client.get(r.headers["location"]).text) == "Active subscription"


def test_G12_in_app_notifications_listed_and_marked_read(fb, client):
    make_tenant(fb, tenant_id="acme", catalog="session-caps", plan="pro")
    subscriptions.cancel(fb, SYSTEM, "acme")  # raises an in-app alert
    csrf = as_role(fb, client, "acme", Role.OWNER)
    page = client.get("/portal/t/acme/billing").text
    assert re.search(r"\d+ unread", page) and 'class="unread' in page and "Cancellation scheduled" in page
    r = client.post("/portal/t/acme/billing/notifications/read", data={"csrf_token": csrf})
    page = client.get(r.headers["location"]).text
    assert "unread" not in page.split("notes-title")[1].split("</h2>")[0]


def test_G14_export_downloads_a_zip_and_audit_log_lists_changes(fb, client):
    make_tenant(fb, tenant_id="acme", catalog="session-caps", plan="pro")
    as_role(fb, client, "acme", Role.OWNER)
    r = client.get("/portal/t/acme/billing/export")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert any(n.startswith("acme/") for n in zipfile.ZipFile(io.BytesIO(r.content)).namelist())
    audit = client.get("/portal/t/acme/audit")
    assert audit.status_code == 200 and "subscription.started" in audit.text


def test_G6_member_gets_403_on_every_billing_page_and_action(fb, client):
    make_tenant(fb, tenant_id="acme", catalog="agent-sessions", plan="sme")
    csrf = as_role(fb, client, "acme", Role.MEMBER)
    for path in ("", "/plans/playground", "/upcoming/cancel", "/cancel", "/export"):
        assert client.get(f"/portal/t/acme/billing{path}").status_code == 403, path
    assert client.get("/portal/t/acme/audit").status_code == 403
    for path, data in (
        ("/subscribe", {"plan": "playground"}),
        ("/sales-requests", {"plan": "enterprise"}),
        ("/session-limit", {"sessions": "5"}),
        ("/session-limit/reset", {}),
        ("/cancel", {}),
        ("/reactivate", {}),
        ("/upcoming/cancel", {}),
        ("/notifications/read", {}),
    ):
        assert client.post(f"/portal/t/acme/billing{path}", data={"csrf_token": csrf, **data}).status_code == 403, path
    assert subscriptions.current(fb, SYSTEM, "acme").plan.code == "sme"


def test_forms_need_the_csrf_token(fb, client):
    make_tenant(fb, tenant_id="acme", catalog="agent-sessions", plan="sme")
    as_role(fb, client, "acme", Role.OWNER)
    r = client.post("/portal/t/acme/billing/session-limit", data={"csrf_token": "forged", "sessions": "5"})
    assert r.status_code == 403
