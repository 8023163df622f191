"""The portal in a real browser (Chromium via Playwright)."""

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
    base, _, _ = server
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone's width
    page.goto(f"{base}/portal/operator")
    page.fill("input[name=api_key]", "browser-operator-key")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/portal/console")
    page.click("nav >> text=Test clocks")
    page.fill("input[name=name]", "demo")
    page.click("text=Create")
    page.fill("input[name=by]", "36h")
    page.click("button:has-text('Advance')")
    page.wait_for_selector("text=Advanced from")
    shot(page, "clock-advanced")
