"""The portal in a real browser (Chromium via Playwright)."""

import re
from datetime import datetime, timedelta

from browser_support import api, sign_in_link


def _sign_in(page, base, log, tenant_id, email):
    page.goto(f"{base}/portal/sign-in")
    page.fill("input[name=tenant_id]", tenant_id)
    page.fill("input[name=email]", email)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Check your e-mail")
    page.goto(sign_in_link(log, email))
    page.click("button:has-text('Sign in')")  # F10: the link's page redeems it with a POST


def test_G6_member_signs_in_and_sees_no_billing_tab(server, browser, shot):
    base, _, log = server
    api(base, "POST", "/v1/tenants", json={"id": "acme", "name": "Acme", "owner_email": "owner@acme.test"})
    api(base, "POST", "/v1/tenants/acme/members", json={"email": "member@acme.test", "role": "member"})
    page = browser.new_page()
    _sign_in(page, base, log, "acme", "member@acme.test")
    assert page.locator("nav >> text=Overview").is_visible()
    assert page.locator("nav >> text=Billing").count() == 0
    shot(page, "member-no-billing")
    response = page.goto(f"{base}/portal/t/acme/billing")
    assert response.status == 403


def test_G2_operator_advances_a_test_clock_from_the_console(server, browser, shot):
    """T10: the report shows the clock moved by exactly what was asked, and the due work in between ran."""
    base, _, _ = server
    api(base, "POST", "/v1/tenants", json={"id": "acme", "name": "Acme", "owner_email": "owner@acme.test"})
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone's width
    page.goto(f"{base}/portal/operator")
    page.fill("input[name=api_key]", "browser-operator-key")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/portal/console")
    page.click("nav >> text=Test clocks")
    page.fill("input[name=name]", "demo")
    page.click("text=Create")
    page.fill("input[name=tenant_id]", "acme")
    page.click("button:has-text('Attach')")
    page.wait_for_selector("text=tenants: acme")
    api(base, "POST", "/v1/tenants/acme/subscription", json={"catalog": "session-caps", "plan": "free"})

    def advance(by: str) -> tuple[timedelta, list[str]]:
        page.fill("input[name=by]", by)
        page.click("button:has-text('Advance')")
        report = page.locator("section[aria-label='Advance report']")
        text = report.locator("p").inner_text()
        start, end = re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", text)
        moved = datetime.fromisoformat(end) - datetime.fromisoformat(start)
        return moved, report.locator("li").all_inner_texts()

    moved, ran = advance("36h")
    assert (moved, ran) == (timedelta(hours=36), [])
    shot(page, "clock-advanced")
    moved, ran = advance("31d")  # past the end of the first monthly period: it renews
    assert moved == timedelta(days=31)
    assert len(ran) == 1 and "acme" in ran[0] and "period_end" in ran[0], ran
