"""The Billing tab at a phone's width, 390 px (newuser.md D19): the invoices table fits without
sideways scrolling, *Largest events and conversations* lists the current period only, and a
20-digit session limit is the form's friendly refusal, not raw JSON."""

from __future__ import annotations

from browser_support import api, record_conversations, sign_in_link

PHONE = {"width": 390, "height": 844}


def _owner_page(browser, base, log):
    page = browser.new_page(viewport=PHONE)
    page.goto(f"{base}/portal/sign-in")
    page.fill("input[name=tenant_id]", "acme")
    page.fill("input[name=email]", "owner@acme.test")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Check your e-mail")
    page.goto(sign_in_link(log, "owner@acme.test"))
    page.click("button:has-text('Sign in')")  # F10: the link's page redeems it with a POST
    page.goto(f"{base}/portal/t/acme/billing")
    return page


def test_D19_billing_tab_on_a_phone(server, browser, shot):
    base, env, log = server
    api(base, "POST", "/v1/tenants", json={"id": "acme", "name": "Acme Agents", "owner_email": "owner@acme.test"})
    clock = api(base, "POST", "/v1/test-clocks", json={"name": "acme clock"})
    api(base, "POST", f"/v1/test-clocks/{clock['id']}/tenants", json={"tenant_id": "acme"})
    api(base, "POST", "/v1/tenants/acme/payment-methods", json={"token": "4242424242424242"})
    api(base, "POST", "/v1/tenants/acme/subscription", json={"catalog": "agent-sessions", "plan": "sme"})
    record_conversations(env, "acme", "last-month", 3)
    for _ in range(2):  # two renewals: three invoices
        api(base, "POST", f"/v1/test-clocks/{clock['id']}/advance", json={"by": "31d"})
    record_conversations(env, "acme", "this-month", 2)

    page = _owner_page(browser, base, log)
    assert page.locator("table.invoices tbody tr").count() == 3
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide at a {PHONE['width']} px viewport"
    shot(page, "phone-billing")

    listed = page.locator("table.top-usage tr[data-top-id]").evaluate_all("rows => rows.map(r => r.dataset.topId)")
    assert sorted(listed) == ["this-month-0", "this-month-1"], listed

    page.evaluate("""() => { const input = document.querySelector('input[name=sessions]');
                             input.removeAttribute('maxlength'); input.removeAttribute('max');
                             input.type = 'text'; }""")
    page.fill("input[name=sessions]", "9" * 20)
    page.click("button:has-text('Set limit')")
    page.wait_for_selector("[role=alert][data-code=session_limit_invalid]")
    assert "validation_error" not in page.content() and page.locator("h2", has_text="Session limit").count() > 0
