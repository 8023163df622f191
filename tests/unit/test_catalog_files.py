"""The catalog format: the three bundled catalogs reproduce the seeds; broken
catalogs are refused naming the file, plan and field."""

from datetime import timedelta

import pytest
import yaml

from farebox.catalog.domain import MAX_PRICE_MINOR, MeterKind, Policy, Sales, Scope
from farebox.catalog.files import (
    BUNDLED,
    CatalogError,
    _UniqueKeyLoader,
    bundled_catalog_text,
    load_catalog,
    load_catalog_file,
    plan_document,
    plan_from_document,
)
from farebox.kernel.money import Money
from farebox.kernel.periods import Interval


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_catalogs_validate(name):
    catalog, _ = load_catalog(name)
    assert catalog.name == name


def test_S1_S5_S6_session_caps_numbers():
    catalog, _ = load_catalog("session-caps")
    assert list(catalog.plans) == ["free", "pro", "pro_plus", "business"]
    free, pro, business = catalog.plan("free"), catalog.plan("pro"), catalog.plan("business")
    assert free.is_free and not free.requires_payment_method  # S1: no card
    assert catalog.free_plan == "free"
    assert pro.limit("attendees").included == 500 and pro.limit("attendees").policy is Policy.SOFT  # S5
    assert business.limit("concurrent").included == 3000  # S5: concurrent
    assert catalog.meter("concurrent").kind is MeterKind.CONCURRENT_ATTENDEES
    assert business.interval is Interval.YEAR and business.sales is Sales.CONTACT_SALES  # S1
    assert pro.interval is Interval.MONTH
    assert free.event_duration == timedelta(minutes=90) and pro.event_duration == timedelta(hours=4)  # S6
    assert pro.has_feature("cohosts") and not free.has_feature("cohosts")  # S2


def test_L3_L5_L8_attendee_credit_numbers():
    catalog, _ = load_catalog("attendee-credits")
    credits = catalog.meter("credits")
    assert credits.kind is MeterKind.ATTENDEES and credits.scope is Scope.PERIOD  # L1-L3
    free = catalog.plan("free")
    assert free.limit("credits").included == 30 and free.interval is Interval.YEAR  # L5
    assert free.event_duration == timedelta(minutes=30) and not free.requires_payment_method
    assert catalog.plan("pro").limit("credits").policy is Policy.HARD  # L7
    enterprise = catalog.plan("enterprise").limit("credits")
    assert enterprise.policy is Policy.OVERAGE and enterprise.overage_unit_price is not None  # L8
    assert catalog.plan("pro").limit("credits").carry_forward_on_upgrade  # L4
    assert catalog.retention_days == 15  # L10, G14
    assert catalog.plan("enterprise").alert_tone.value == "mild"  # L8


def test_A1_A3_A8_agent_session_numbers():
    catalog, _ = load_catalog("agent-sessions")
    assert catalog.currency == "EUR"
    assert catalog.meter("sessions").window == timedelta(hours=24)  # A1
    sme = catalog.plan("sme")
    assert sme.price == Money(15000, "EUR") and sme.interval is Interval.MONTH  # A8
    limit = sme.limit("sessions")
    assert limit.included == 600 and limit.overage_unit_price == Money(50, "EUR") and limit.customer_limit  # A6, A8
    assert sme.trial.days == 14 and sme.trial.usage == {"sessions": 50}  # A3
    assert sme.trial.usage_alerts == (60, 90) and sme.trial.days_left_alerts == (7, 2)
    assert catalog.plan("playground").limit("sessions").included == 300  # A8
    assert catalog.plan("sme_answered").answered_only  # A2
    assert catalog.plan("enterprise").sales is Sales.BOOK_A_DEMO  # A5
    assert catalog.free_plan is None  # A3, A4: ended means Expired


@pytest.mark.parametrize("name", BUNDLED)
def test_stored_plan_document_rebuilds_the_same_plan(name):
    catalog, document = load_catalog(name)
    for code, plan in catalog.plans.items():
        assert plan_from_document(plan_document(document, code), catalog=name, code=code) == plan


def _broken(tmp_path, mutate):
    data = yaml.safe_load(bundled_catalog_text("attendee-credits"))
    mutate(data)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(CatalogError) as info:
        load_catalog_file(path)
    return str(info.value)


def test_broken_catalog_names_file_plan_and_field(tmp_path):
    message = _broken(tmp_path, lambda d: d["plans"]["pro"]["limits"]["credits"].update(policy="sometimes"))
    assert "broken.yaml" in message and "plan 'pro'" in message and "limits.credits.policy" in message


def test_G1_float_prices_are_refused(tmp_path):
    message = _broken(tmp_path, lambda d: d["plans"]["pro"].update(price=1188.5))
    assert "plan 'pro'" in message and "'price'" in message and "no floats" in message


def test_G1_price_with_too_many_decimals_is_refused(tmp_path):
    message = _broken(tmp_path, lambda d: d["plans"]["pro"].update(price="10.005"))
    assert "plan 'pro'" in message and "price" in message


def test_limit_on_unknown_meter_is_refused(tmp_path):
    message = _broken(tmp_path, lambda d: d["plans"]["free"]["limits"].update(seats={"included": 1}))
    assert "plan 'free'" in message and "limits.seats" in message and "no meter 'seats'" in message


def test_overage_without_price_is_refused(tmp_path):
    message = _broken(tmp_path, lambda d: d["plans"]["enterprise"]["limits"]["credits"].pop("overage_unit_price"))
    assert "plan 'enterprise'" in message and "overage_unit_price" in message


def test_unknown_field_and_missing_fallback_plan_are_refused(tmp_path):
    message = _broken(tmp_path, lambda d: d["plans"]["pro"].update(colour="blue"))
    assert "plan 'pro'" in message and "colour" in message
    message = _broken(tmp_path, lambda d: d.update(free_plan="gratis"))
    assert "free_plan" in message and "gratis" in message


def test_not_yaml_and_missing_file_are_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("plans: [unclosed")
    with pytest.raises(CatalogError, match="bad.yaml.*not valid YAML"):
        load_catalog_file(path)
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog_file(tmp_path / "missing.yaml")


def _text_of(tmp_path, text: str) -> str:
    path = tmp_path / "edited.yaml"
    path.write_text(text)
    with pytest.raises(CatalogError) as info:
        load_catalog_file(path)
    return str(info.value)


def test_D1_negative_plan_price_is_refused(tmp_path):
    """D1: a −29.00 plan produced a −29.00 "paid" invoice and negative MRR."""
    message = _broken(tmp_path, lambda d: d["plans"]["pro"].update(price="-29.00"))
    assert "broken.yaml" in message and "plan 'pro'" in message and "field 'price'" in message
    assert "must not be negative" in message


def test_D1_negative_overage_price_is_refused(tmp_path):
    message = _broken(
        tmp_path, lambda d: d["plans"]["enterprise"]["limits"]["credits"].update(overage_unit_price="-0.10")
    )
    assert "plan 'enterprise'" in message and "field 'limits.credits.overage_unit_price'" in message
    assert "must not be negative" in message


def test_D4_price_beyond_what_a_money_column_stores_is_refused(tmp_path):
    """D4: 99999999999999999999999.00 passed and subscribing was a 500 (OverflowError in SQLite)."""
    message = _broken(tmp_path, lambda d: d["plans"]["pro"].update(price="99999999999999999999999.00"))
    assert "plan 'pro'" in message and "field 'price'" in message and "at most" in message
    over = f"{(MAX_PRICE_MINOR + 1) // 100}.{(MAX_PRICE_MINOR + 1) % 100:02d}"
    assert "plan 'pro'" in _broken(tmp_path, lambda d: d["plans"]["pro"].update(price=over))
    message = _broken(tmp_path, lambda d: d["plans"]["enterprise"]["limits"]["credits"].update(overage_unit_price=over))
    assert "field 'limits.credits.overage_unit_price'" in message and "at most" in message


def test_D4_the_largest_price_is_accepted_and_fits_a_64_bit_money_column(tmp_path):
    """The bound leaves room for tax and many lines inside a signed 64-bit column (SQLite INTEGER, PG BIGINT)."""
    data = yaml.safe_load(bundled_catalog_text("attendee-credits"))
    data["plans"]["pro"]["price"] = f"{MAX_PRICE_MINOR // 100}.{MAX_PRICE_MINOR % 100:02d}"
    path = tmp_path / "top.yaml"
    path.write_text(yaml.safe_dump(data))
    catalog, _ = load_catalog_file(path)
    assert catalog.plan("pro").price == Money(MAX_PRICE_MINOR, "USD")
    assert MAX_PRICE_MINOR * 10_000 <= 2**63 - 1


def test_overage_price_on_an_unlimited_limit_is_refused(tmp_path):
    def unlimited(d):
        d["plans"]["enterprise"]["limits"]["credits"].update(included=None, alerts=[])

    message = _broken(tmp_path, unlimited)
    assert "plan 'enterprise'" in message and "field 'limits.credits.included'" in message


def test_overage_price_on_a_hard_limit_is_refused(tmp_path):
    message = _broken(tmp_path, lambda d: d["plans"]["pro"]["limits"]["credits"].update(overage_unit_price="0.50"))
    assert "plan 'pro'" in message and "limits.credits" in message and "overage_unit_price" in message


def test_D9_duplicate_yaml_keys_are_refused_naming_plan_and_field(tmp_path):
    """D9: `price: "29.00"` then `price: "0.00"` validated, the last silently winning."""
    text = bundled_catalog_text("session-caps").replace('price: "29.00"', 'price: "29.00"\n    price: "0.00"', 1)
    message = _text_of(tmp_path, text)
    assert "edited.yaml" in message and "plan 'pro'" in message and "field 'price'" in message
    assert "duplicate key" in message and "line" in message


def test_D9_duplicate_keys_are_refused_at_every_depth(tmp_path):
    text = bundled_catalog_text("attendee-credits")
    top = _text_of(tmp_path, text + "\ntitle: Again\n")
    assert "field 'title'" in top and "duplicate key" in top
    nested = text.replace("included: 30,", "included: 30, included: 3000,", 1)
    assert "included: 3000" in nested
    message = _text_of(tmp_path, nested)
    assert "plan 'free'" in message and "field 'limits.credits.included'" in message


def test_a_yaml_merge_key_may_still_be_overridden():
    """D9 refuses a key written twice, not a key that overrides one brought in by `<<`."""
    text = "a: &a {x: 1, y: 2}\nb:\n  <<: *a\n  x: 3\n"
    loader = _UniqueKeyLoader(text)
    try:
        assert loader.get_single_data() == yaml.safe_load(text) == {"a": {"x": 1, "y": 2}, "b": {"x": 3, "y": 2}}
    finally:
        loader.dispose()


def test_unknown_nested_field_is_refused_naming_it(tmp_path):
    message = _broken(tmp_path, lambda d: d["plans"]["pro"]["limits"]["credits"].update(inclded=5))
    assert "plan 'pro'" in message and "limits.credits.inclded" in message
    message = _broken(tmp_path, lambda d: d["meters"]["credits"].update(colour="red"))
    assert "meter 'credits'" in message and "colour" in message


def test_D11_yaml_syntax_error_keeps_its_text_and_names_the_file(tmp_path):
    text = bundled_catalog_text("session-caps").replace("interval: month", "interval: [month", 1)
    message = _text_of(tmp_path, text)
    assert "<unicode string>" not in message
    assert str(tmp_path / "edited.yaml") in message.split("not valid YAML", 1)[1]
    assert "interval: [month" in message and "expected ',' or ']'" in message


def test_D11_a_control_character_is_refused_naming_the_file(tmp_path):
    message = _text_of(tmp_path, "name: x\u001f\n")
    assert "not valid YAML" in message and "special characters" in message and "<unicode string>" not in message
    assert str(tmp_path / "edited.yaml") in message.split("not valid YAML", 1)[1]
