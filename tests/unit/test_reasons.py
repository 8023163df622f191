"""G15: every refusal carries a stable code and a human message."""

from farebox.domain import reasons


def test_G15_reason_codes_are_unique_snake_case_and_have_messages():
    assert len(reasons.REGISTRY) == len({r.code for r in reasons.REGISTRY.values()})
    for code, reason in reasons.REGISTRY.items():
        assert code == reason.code
        assert code.replace("_", "").isalpha() and code.islower()
        assert reason.template.strip()


def test_G15_admission_codes_of_docs_admission_are_registered():
    for code in (
        "admitted", "already_counted", "not_billable_member", "attendee_cap_reached", "credits_exhausted",
        "session_limit_reached", "trial_exhausted", "subscription_expired", "payment_overdue",
        "upgrade_required", "duration_exceeded", "waiting_room",
    ):
        assert code in reasons.REGISTRY


def test_G9_G10_messages_are_the_seed_wording():
    assert reasons.PAYMENT_OVERDUE.message() == "Your payment is overdue and the grace period has expired."
    assert reasons.SUBSCRIPTION_EXPIRED.message() == "Your subscription has ended. Please upgrade your plan to continue."


def test_G15_domain_error_carries_code_and_formatted_message():
    error = reasons.DomainError(reasons.NOT_FOUND, what="Tenant")
    assert error.code == "not_found"
    assert error.refusal.message == "Tenant not found."
