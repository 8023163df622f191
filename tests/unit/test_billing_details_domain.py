"""D7: the pure checks of a tenant's billing details and the invoice's `bill_to` snapshot (G13)."""

import pytest

from farebox.invoicing.domain.billing_details import bill_to, bp_to_percent, normalise, percent_to_bp


@pytest.mark.parametrize(
    ("text", "bp"), [("20", 2000), ("7.25", 725), ("0", 0), ("100", 10000), (" 5.5 ", 550), ("0.01", 1)]
)
def test_D7_percent_text_to_basis_points_and_back(text, bp):
    assert percent_to_bp(text) == bp
    assert percent_to_bp(bp_to_percent(bp)) == bp


@pytest.mark.parametrize("text", ["", "20%", "7.255", "-1", "1e2", "twenty", "1,5"])
def test_D7_percent_text_that_is_not_a_rate(text):
    assert percent_to_bp(text) is None


def test_D7_normalise_trims_clears_and_names_each_bad_field():
    values, problems = normalise(
        {"legal_name": "  Acme Ltd ", "tax_id": "", "billing_address": "a\r\nb", "tax_rate_bp": 0}
    )
    assert (
        values == {"legal_name": "Acme Ltd", "tax_id": None, "billing_address": "a\nb", "tax_rate_bp": 0}
        and problems == []
    )
    _, problems = normalise(
        {"billing_email": "x", "tax_rate_bp": True, "tax_id": "a" * 65, "legal_name": 5, "other": 1}
    )
    assert sorted(p.field for p in problems) == ["billing_email", "legal_name", "other", "tax_id", "tax_rate_bp"]


def test_D7_bill_to_prefers_the_legal_name():
    tenant = {"name": "acme", "legal_name": None, "billing_email": "f@a.example", "billing_address": "1 Road"}
    assert bill_to(tenant) == {"name": "acme", "email": "f@a.example", "address": "1 Road"}
    assert bill_to({**tenant, "legal_name": "Acme Ltd"})["name"] == "Acme Ltd"
