"""G15: every refusal carries a stable code and a human message."""

import pytest

from farebox.kernel import reasons


def test_G15_reason_codes_are_unique_snake_case_and_have_messages():
    with pytest.raises(ValueError, match="duplicate reason code"):
        reasons._reason("not_found", "again")
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
    assert (
        reasons.SUBSCRIPTION_EXPIRED.message() == "Your subscription has ended. Please upgrade your plan to continue."
    )


def test_G15_domain_error_carries_code_and_formatted_message():
    error = reasons.DomainError(reasons.NOT_FOUND, what="Tenant")
    assert error.code == "not_found"
    assert error.refusal.message == "Tenant not found."


def test_T15_every_code_of_the_http_status_table_is_a_registered_reason():
    """A misspelt key would silently map its code to the default status (G15)."""
    from farebox.entrypoints.api.errors import STATUS_BY_CODE

    assert sorted(set(STATUS_BY_CODE) - set(reasons.REGISTRY)) == []


def test_G15_every_code_the_api_edge_answers_itself_is_registered():
    """The codes errors.py writes without a DomainError (lost connection, unexpected error, HTTP errors)."""
    import ast
    import inspect

    from farebox.entrypoints.api import errors

    literals = set()
    for node in ast.walk(ast.parse(inspect.getsource(errors))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "error_body":
            literals |= {a.value for a in node.args[:1] if isinstance(a, ast.Constant)}
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Dict)
        ):
            literals |= {v.value for v in [*node.func.value.values, *node.args[1:]] if isinstance(v, ast.Constant)}
    assert literals, "no code literal found: the test no longer reads errors.py"
    assert sorted(literals - set(reasons.REGISTRY)) == []
