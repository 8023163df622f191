"""G1: money is exact — integer minor units with an ISO 4217 currency."""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from farebox.kernel.money import (
    CURRENCY_EXPONENTS,
    CurrencyError,
    Money,
    MoneyError,
    allocate,
    exponent,
    prorate,
    prorate_cumulative,
    round_half_up,
)

currencies = st.sampled_from(sorted(CURRENCY_EXPONENTS))
amounts = st.integers(min_value=-(10**15), max_value=10**15)


@st.composite
def moneys(draw: st.DrawFn, currency: str | None = None) -> Money:
    return Money(draw(amounts), currency or draw(currencies))


@st.composite
def same_currency(draw: st.DrawFn, n: int) -> list[Money]:
    currency = draw(currencies)
    return [Money(draw(amounts), currency) for _ in range(n)]


# -- examples -----------------------------------------------------------------


def test_G1_required_exponents() -> None:
    expected = {"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "KWD": 3, "CHF": 2, "CAD": 2, "AUD": 2, "SEK": 2}
    for code, exp in expected.items():
        assert exponent(code) == exp


@pytest.mark.parametrize("code", ["XXX", "usd", "US", "USDX", "", "U$D", 840, None])
def test_G1_unknown_or_ill_formed_currency_raises_naming_the_code(code: object) -> None:
    with pytest.raises(CurrencyError, match=re.escape(repr(code))):
        exponent(code)  # type: ignore[arg-type]
    with pytest.raises(CurrencyError):
        Money(100, code)  # type: ignore[arg-type]


def test_G1_default_currency_is_usd() -> None:
    assert Money(5).currency == "USD"
    assert Money.zero() == Money(0, "USD")
    assert Money.parse("1.50") == Money(150, "USD")


@pytest.mark.parametrize("bad", [1.0, 1.5, True, False, Decimal("1"), Fraction(1, 2), "100", None])
def test_G1_non_int_amounts_refused(bad: object) -> None:
    with pytest.raises(MoneyError):
        Money(bad, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize("factor", [1.5, 2.0, True, Decimal("2"), Fraction(1, 2)])
def test_G1_multiplication_by_non_int_refused(factor: object) -> None:
    with pytest.raises(MoneyError):
        Money(100, "USD") * factor  # type: ignore[operator]
    with pytest.raises(MoneyError):
        factor * Money(100, "USD")  # type: ignore[operator]


def test_G1_arithmetic_examples() -> None:
    a, b = Money(150, "EUR"), Money(75, "EUR")
    assert a + b == Money(225, "EUR")
    assert a - b == Money(75, "EUR")
    assert -a == Money(-150, "EUR")
    assert a * 3 == 3 * a == Money(450, "EUR")
    assert b < a and b <= a and a > b and a >= b and a >= a
    assert Money.zero("EUR").is_zero() and not a.is_zero()
    assert sorted([a, b]) == [b, a]


def test_G1_mixing_currencies_raises() -> None:
    usd, eur = Money(100, "USD"), Money(100, "EUR")
    for op in (lambda: usd + eur, lambda: usd - eur, lambda: usd < eur, lambda: usd <= eur,
               lambda: usd > eur, lambda: usd >= eur):  # fmt: skip
        with pytest.raises(MoneyError, match="mix currencies"):
            op()
    assert usd != eur  # equality is defined (False), not an error


def test_G1_money_with_floats_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        Money(100, "USD") + 1.5  # type: ignore[operator]
    with pytest.raises(TypeError):
        _ = Money(100, "USD") < 1.5  # type: ignore[operator]


def test_G1_is_immutable_and_hashable() -> None:
    m = Money(100, "USD")
    with pytest.raises(AttributeError):
        m.amount_minor = 5  # type: ignore[misc]
    assert len({m, Money(100, "USD"), Money(100, "EUR")}) == 2


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(15000, "EUR"), "150.00 EUR"),
        (Money(500, "JPY"), "500 JPY"),
        (Money(-5, "USD"), "-0.05 USD"),
        (Money(0, "GBP"), "0.00 GBP"),
        (Money(1234567, "KWD"), "1234.567 KWD"),
        (Money(-1, "KWD"), "-0.001 KWD"),
        (Money(-500, "JPY"), "-500 JPY"),
    ],
)
def test_G1_format(money: Money, text: str) -> None:
    assert money.format() == str(money) == text


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [("150.00", "EUR", 15000), ("150", "EUR", 15000), ("150.5", "EUR", 15050), ("-0.05", "USD", -5),
     ("+3", "JPY", 3), ("500", "JPY", 500), ("1.234", "KWD", 1234), (" 7.10 ", "USD", 710)],
)  # fmt: skip
def test_G1_parse(text: str, currency: str, minor: int) -> None:
    assert Money.parse(text, currency) == Money(minor, currency)


@pytest.mark.parametrize(
    ("text", "currency"),
    [("150.001", "EUR"), ("1.000", "EUR"), ("500.0", "JPY"), ("1.2345", "KWD")],
)
def test_G1_parse_refuses_more_decimals_than_the_currency(text: str, currency: str) -> None:
    with pytest.raises(MoneyError, match=f"allows at most {exponent(currency)}"):
        Money.parse(text, currency)


@pytest.mark.parametrize("text", ["", "abc", "1e3", "1,000.00", "$5", "1.", ".5", "- 1", "nan", "1.5 USD", "١٢"])
def test_G1_parse_refuses_malformed_text(text: str) -> None:
    with pytest.raises(MoneyError):
        Money.parse(text, "USD")


def test_G1_from_decimal() -> None:
    assert Money.from_decimal(Decimal("150.00"), "EUR") == Money(15000, "EUR")
    assert Money.from_decimal(Decimal("1.500"), "EUR") == Money(150, "EUR")  # value is exact
    assert Money.from_decimal(12, "JPY") == Money(12, "JPY")
    with pytest.raises(MoneyError, match="decimal place"):
        Money.from_decimal(Decimal("1.505"), "EUR")
    with pytest.raises(MoneyError):
        Money.from_decimal(Decimal("0.5"), "JPY")
    for bad in (1.5, Decimal("NaN"), Decimal("Infinity"), True):
        with pytest.raises(MoneyError):
            Money.from_decimal(bad, "USD")  # type: ignore[arg-type]


def test_G1_to_decimal() -> None:
    assert Money(15000, "EUR").to_decimal() == Decimal("150.00")
    assert str(Money(15000, "EUR").to_decimal()) == "150.00"
    assert str(Money(-1, "KWD").to_decimal()) == "-0.001"
    assert str(Money(500, "JPY").to_decimal()) == "500"
    huge = Money(10**40 + 1, "USD")  # beyond Decimal's default 28-digit context
    assert Money.from_decimal(huge.to_decimal(), "USD") == huge


@pytest.mark.parametrize(
    ("value", "currency", "minor"),
    [("1.005", "USD", 101), ("-1.005", "USD", -101), ("1.0049", "USD", 100), ("-1.0049", "USD", -100),
     ("2.5", "JPY", 3), ("-2.5", "JPY", -3), ("2.4999", "JPY", 2), ("0.0005", "KWD", 1),
     ("-0.0005", "KWD", -1), ("0.00049", "KWD", 0), ("7", "EUR", 700)],
)  # fmt: skip
def test_G1_round_half_up_ties_go_away_from_zero(value: str, currency: str, minor: int) -> None:
    assert round_half_up(Decimal(value), currency) == Money(minor, currency)


def test_G1_round_half_up_refuses_floats() -> None:
    with pytest.raises(MoneyError):
        round_half_up(1.005, "USD")  # type: ignore[arg-type]


def test_G1_allocate_examples() -> None:
    assert allocate(Money(100, "USD"), [1, 1, 1]) == [Money(34, "USD"), Money(33, "USD"), Money(33, "USD")]
    assert allocate(Money(-100, "USD"), [1, 1, 1]) == [Money(-34, "USD"), Money(-33, "USD"), Money(-33, "USD")]
    assert allocate(Money(5, "JPY"), [3, 7]) == [Money(2, "JPY"), Money(3, "JPY")]
    assert allocate(Money(10, "USD"), [0, 1, 0]) == [Money(0, "USD"), Money(10, "USD"), Money(0, "USD")]
    for bad in ([], [0, 0], [1, -1], [1.5], [True]):
        with pytest.raises(MoneyError):
            allocate(Money(10, "USD"), bad)  # type: ignore[arg-type]


def test_G1_prorate_examples() -> None:
    month = 30 * 86_400
    assert prorate(Money(3000, "USD"), 15 * 86_400, month) == Money(1500, "USD")
    assert prorate(Money(1000, "USD"), 1, 3) == Money(333, "USD")
    assert prorate(Money(1000, "USD"), 2, 3) == Money(667, "USD")
    assert prorate(Money(1, "USD"), 1, 2) == Money(1, "USD")  # tie -> up
    assert prorate(Money(-1, "USD"), 1, 2) == Money(-1, "USD")  # tie -> away from zero
    assert prorate(Money(10**30, "USD"), 1, 3) == Money(333333333333333333333333333333, "USD")  # no float


@pytest.mark.parametrize(("used", "total"), [(-1, 10), (11, 10), (0, 0), (1, -1), (1.0, 10), (1, 10.0), (True, 2)])
def test_G1_prorate_rejects_bad_seconds(used: object, total: object) -> None:
    with pytest.raises(ValueError):
        prorate(Money(100, "USD"), used, total)  # type: ignore[arg-type]


def test_G1_prorate_cumulative_examples() -> None:
    assert prorate_cumulative(Money(100, "USD"), [1, 1, 1], 3) == [Money(33, "USD"), Money(34, "USD"), Money(33, "USD")]
    # independent rounding over-bills: 1 + 1 = 2 > 1; cumulative is exact
    assert prorate(Money(1, "USD"), 1, 2) + prorate(Money(1, "USD"), 1, 2) == Money(2, "USD")
    assert prorate_cumulative(Money(1, "USD"), [1, 1], 2) == [Money(1, "USD"), Money(0, "USD")]
    assert prorate_cumulative(Money(100, "USD"), [], 3) == []
    with pytest.raises(ValueError):
        prorate_cumulative(Money(100, "USD"), [2, 2], 3)


# -- properties ---------------------------------------------------------------


@given(moneys())
def test_G1_format_parse_round_trip(m: Money) -> None:
    number, code = m.format().split(" ")
    assert code == m.currency
    assert Money.parse(number, code) == m
    assert Money.from_decimal(m.to_decimal(), m.currency) == m
    assert round_half_up(m.to_decimal(), m.currency) == m


@given(same_currency(3))
def test_G1_addition_associative_commutative_with_inverse(ms: list[Money]) -> None:
    a, b, c = ms
    zero = Money.zero(a.currency)
    assert (a + b) + c == a + (b + c)
    assert a + b == b + a
    assert a + zero == a and a - a == zero and a + (-a) == zero
    assert a - b == a + (-b)
    assert (a + b).amount_minor == a.amount_minor + b.amount_minor


@given(same_currency(2), st.integers(-1000, 1000))
def test_G1_order_matches_minor_units_and_multiplication_distributes(ms: list[Money], k: int) -> None:
    a, b = ms
    assert (a < b) == (a.amount_minor < b.amount_minor)
    assert (a <= b) == (a.amount_minor <= b.amount_minor)
    assert (a * k) + (b * k) == (a + b) * k


@given(moneys(), moneys())
def test_G1_mixing_currencies_always_raises(a: Money, b: Money) -> None:
    assume(a.currency != b.currency)
    with pytest.raises(MoneyError):
        a + b
    with pytest.raises(MoneyError):
        a - b
    with pytest.raises(MoneyError):
        _ = a < b


@given(st.floats(allow_nan=True), currencies)
def test_G1_floats_refused_everywhere(x: float, currency: str) -> None:
    with pytest.raises(MoneyError):
        Money(x, currency)  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        Money(1, currency) * x  # type: ignore[operator]
    with pytest.raises(MoneyError):
        Money.from_decimal(x, currency)  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        round_half_up(x, currency)  # type: ignore[arg-type]


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**12), max_value=10**12, places=6),
       currencies)  # fmt: skip
def test_G1_round_half_up_is_nearest_with_ties_away_from_zero(value: Decimal, currency: str) -> None:
    m = round_half_up(value, currency)
    exact = Fraction(value) * 10 ** exponent(currency)
    error = m.amount_minor - exact
    assert abs(error) <= Fraction(1, 2)
    if abs(error) == Fraction(1, 2):  # a tie: away from zero
        assert abs(m.amount_minor) > abs(exact)
    assert round_half_up(-value, currency) == -m  # symmetric


@given(moneys(), st.lists(st.integers(0, 10**6), min_size=1, max_size=20))
def test_G1_allocate_sums_exactly_and_stays_within_one_unit(m: Money, weights: list[int]) -> None:
    assume(sum(weights) > 0)
    parts = allocate(m, weights)
    assert len(parts) == len(weights)
    assert all(p.currency == m.currency for p in parts)
    assert sum(p.amount_minor for p in parts) == m.amount_minor
    total = sum(weights)
    for part, w in zip(parts, weights, strict=True):
        assert abs(part.amount_minor - Fraction(m.amount_minor * w, total)) < 1
        if w == 0:
            assert part.is_zero()


@given(moneys(), st.integers(1, 50))
def test_G1_allocate_equal_weights_parts_differ_by_at_most_one(m: Money, n: int) -> None:
    parts = [p.amount_minor for p in allocate(m, [1] * n)]
    assert max(parts) - min(parts) <= 1
    assert sum(parts) == m.amount_minor


seconds_pairs = st.integers(1, 10**9).flatmap(lambda total: st.tuples(st.integers(0, total), st.just(total)))


@given(moneys(), seconds_pairs)
def test_G1_prorate_bounds_and_exact_ends(m: Money, pair: tuple[int, int]) -> None:
    used, total = pair
    assert prorate(m, total, total) == m
    assert prorate(m, 0, total).is_zero()
    p = prorate(m, used, total)
    assert p.currency == m.currency
    assert abs(p.amount_minor - Fraction(m.amount_minor * used, total)) <= Fraction(1, 2)


@given(moneys(), st.integers(1, 10**9).flatmap(lambda t: st.tuples(st.integers(0, t), st.integers(0, t), st.just(t))))
def test_G1_prorate_monotonic_in_used(m: Money, triple: tuple[int, int, int]) -> None:
    u1, u2, total = triple
    lo, hi = sorted((u1, u2))
    if m.amount_minor >= 0:
        assert prorate(m, lo, total) <= prorate(m, hi, total)
    else:
        assert prorate(m, lo, total) >= prorate(m, hi, total)


@st.composite
def period_split(draw: st.DrawFn) -> tuple[list[int], int]:
    """A period of `total` seconds cut into consecutive pieces (some may be empty)."""
    total = draw(st.integers(1, 10**8))
    cuts = sorted(draw(st.lists(st.integers(0, total), max_size=30)))
    bounds = [0, *cuts, total]
    return [b - a for a, b in zip(bounds, bounds[1:], strict=False)], total


@given(moneys(), period_split())
def test_G1_independent_prorate_pieces_err_by_at_most_half_the_piece_count(
    m: Money, split: tuple[list[int], int]
) -> None:
    pieces, total = split
    drift = sum(prorate(m, used, total).amount_minor for used in pieces) - m.amount_minor
    assert abs(drift) <= len(pieces) // 2


def test_G1_independent_prorate_bound_is_attained() -> None:
    # n pieces of 1/n of n/2 cents: every piece is an exact tie at 0.5 and rounds up
    n = 6
    drift = sum(prorate(Money(n // 2, "USD"), 1, n).amount_minor for _ in range(n)) - n // 2
    assert drift == n // 2


@given(moneys(), period_split())
def test_G1_prorate_cumulative_sums_exactly(m: Money, split: tuple[list[int], int]) -> None:
    pieces, total = split
    parts = prorate_cumulative(m, pieces, total)
    assert len(parts) == len(pieces)
    assert sum(p.amount_minor for p in parts) == m.amount_minor
    for part, used in zip(parts, pieces, strict=True):
        assert abs(part.amount_minor - Fraction(m.amount_minor * used, total)) < 1


@given(moneys(), period_split(), st.data())
def test_G1_prorate_cumulative_prefix_equals_prorate_of_prefix(
    m: Money, split: tuple[list[int], int], data: st.DataObject
) -> None:
    pieces, total = split
    k = data.draw(st.integers(0, len(pieces)))
    parts = prorate_cumulative(m, pieces[:k], total)
    assert sum(p.amount_minor for p in parts) == prorate(m, sum(pieces[:k]), total).amount_minor
