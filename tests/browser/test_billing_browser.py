"""The Billing tab in a real browser (Chromium via Playwright), without JavaScript
needed: an owner converts a trial, schedules a downgrade and cancels it (G7, G11);
sets a session limit, is refused 0, and sees the 80% warning as the test clock
advances (A6, G2)."""

from browser_support import api, record_conversations, sign_in_link

PHONE = {"width": 390, "height": 844}


def _sign_in(page, base, log, tenant_id, email):
    page.goto(f"{base}/portal/sign-in")
    page.fill("input[name=tenant_id]", tenant_id)
    page.fill("input[name=email]", email)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Check your e-mail")
    page.goto(sign_in_link(log, email))
    page.click("button:has-text('Sign in')")  # F10: the link's page redeems it with a POST


def _tenant_on_trial(base):
    api(base, "POST", "/v1/tenants", json={"id": "acme", "name": "Acme Agents", "owner_email": "owner@acme.test"})
    api(base, "POST", "/v1/tenants/acme/subscription/trial", json={"catalog": "agent-sessions", "plan": "sme"})
    api(base, "POST", "/v1/tenants/acme/payment-methods", json={"token": "pm_card_visa"})  # a paid plan needs one (D2)


def test_G7_G11_owner_subscribes_from_trial_schedules_a_downgrade_and_cancels_it(server, browser, shot):
    base, env, log = server
    _tenant_on_trial(base)
    record_conversations(env, "acme", "trial", 12)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    _sign_in(page, base, log, "acme", "owner@acme.test")
    page.click("nav >> text=Billing")
    assert page.locator(".subscription .badge").inner_text() == "Trial subscription"
    assert page.locator("[data-field=trial-sessions-left]").inner_text() == "38"
    assert page.locator("[data-field=trial-days-left]").inner_text() == "14"
    shot(page, "trial", readme="billing-trial")

    page.click("li[data-plan=sme] >> text=Subscribe")
    page.wait_for_selector("h1:has-text('Subscribe to SME')")
    page.click("button:has-text('Subscribe')")
    page.wait_for_selector("text=Your subscription is updated.")
    assert page.locator(".subscription .badge").inner_text() == "Active subscription"
    assert page.locator("text=Next billing date").is_visible()

    page.click("li[data-plan=playground] >> text=Subscribe")
    page.wait_for_selector("h1:has-text('Apply subscription updates')")
    for choice in ("Immediately", "End of the current period", "On custom date"):
        assert page.locator(f"label:has-text('{choice}')").is_visible()
    page.check("input[value=end_of_period]")
    shot(page, "apply-updates-dialog", readme="apply-subscription-updates")
    page.click("button:has-text('Update subscription')")
    page.wait_for_selector(".upcoming .badge")
    assert page.locator(".upcoming .badge").inner_text() == "Upcoming subscription"
    assert page.locator(".upcoming >> text=Starts on").is_visible()
    shot(page, "upcoming", readme="billing-upcoming")

    page.click(".upcoming >> text=Cancel")
    page.wait_for_selector("h1:has-text('Cancel scheduled plan')")
    shot(page, "cancel-scheduled-plan")
    page.click("button:has-text('Cancel scheduled plan')")
    page.wait_for_selector("text=The scheduled plan change is cancelled.")
    assert page.locator(".upcoming").count() == 0


def test_A6_session_limit_refuses_zero_and_warns_at_80_percent_as_the_clock_advances(server, browser, shot):
    base, env, log = server
    _tenant_on_trial(base)
    api(base, "POST", "/v1/tenants/acme/subscription/change", json={"plan": "sme", "when": "immediately"})
    clock = api(base, "POST", "/v1/test-clocks", json={"name": "acme clock"})
    api(base, "POST", f"/v1/test-clocks/{clock['id']}/tenants", json={"tenant_id": "acme"})

    owner = browser.new_page(viewport=PHONE)  # a phone's width
    _sign_in(owner, base, log, "acme", "owner@acme.test")
    owner.goto(f"{base}/portal/t/acme/billing")
    owner.fill("input[name=sessions]", "0")
    owner.click("button:has-text('Set limit')")
    owner.wait_for_selector("[role=alert][data-code=session_limit_invalid]")
    assert "The session limit must be a whole number greater than zero." in owner.inner_text("[role=alert]")
    shot(owner, "limit-zero-refused")
    owner.fill("input[name=sessions]", "100")
    owner.click("button:has-text('Set limit')")
    owner.wait_for_selector("text=Session limit saved.")

    operator = browser.new_page()
    operator.goto(f"{base}/portal/operator")
    operator.fill("input[name=api_key]", "browser-operator-key")
    operator.click("button[type=submit]")
    operator.goto(f"{base}/portal/console/clocks")
    for day in range(4):  # 20 new conversations a day; the clock moves a day at a time
        record_conversations(env, "acme", f"day{day}", 20)
        operator.fill("input[name=by]", "1d")
        operator.click("button:has-text('Advance')")
        operator.wait_for_selector("text=Advanced from")
        owner.goto(f"{base}/portal/t/acme/billing")
        warned = owner.locator("text=Session limit almost reached").count() > 0
        assert warned == (day == 3), f"day {day}: {owner.inner_text('.limit')}"
    assert "80 of 100 sessions used" in owner.inner_text(".limit")
    shot(owner, "limit-80-percent", readme="billing-phone")
    owner.set_viewport_size({"width": 1200, "height": 900})
    shot(owner, "active-with-usage", readme="billing-active")


def test_D7_owner_saves_billing_details_on_a_phone_and_they_reach_the_api(server, browser, shot):
    base, env, log = server
    _tenant_on_trial(base)
    page = browser.new_page(viewport=PHONE)
    _sign_in(page, base, log, "acme", "owner@acme.test")
    page.goto(f"{base}/portal/t/acme/billing#details")
    form = page.locator("#details form")
    form.locator("input[name=billing_email]").fill("finance@acme.example")
    form.locator("input[name=legal_name]").fill("Acme Agents Ltd")
    form.locator("textarea[name=billing_address]").fill("1 High Street\nLondon")
    form.locator("input[name=tax_id]").fill("GB123456789")
    form.locator("input[name=tax_rate]").fill("20")
    shot(page, "billing-details-phone")
    form.locator("button:has-text('Save billing details')").click()
    page.wait_for_selector("text=Billing details saved")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # fits 390 px
    assert page.locator("#details input[name=tax_rate]").input_value() == "20"
    details = api(base, "GET", "/v1/tenants/acme/billing-details")
    saved = (details["legal_name"], details["billing_address"], details["tax_rate_bp"])
    assert saved == ("Acme Agents Ltd", "1 High Street\nLondon", 2000)
