"""Exact money (G1): integer minor units plus an ISO 4217 currency.

No floats anywhere: amounts are ``int`` minor units, conversions go through
``Decimal`` or text, and every rounding is explicit, done once, half-up.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "CURRENCY_EXPONENTS",
    "DEFAULT_CURRENCY",
    "CurrencyError",
    "Money",
    "MoneyError",
    "allocate",
    "exponent",
    "prorate",
    "prorate_cumulative",
    "round_half_up",
]

DEFAULT_CURRENCY = "USD"

CURRENCY_EXPONENTS: dict[str, int] = {
    "USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "KWD": 3, "CHF": 2, "CAD": 2,
    "AUD": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2, "NZD": 2,
    "SGD": 2, "HKD": 2, "INR": 2, "BRL": 2, "MXN": 2, "ZAR": 2, "CNY": 2,
    "KRW": 0, "BHD": 3, "JOD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip

_CODE = re.compile(r"[A-Z]{3}")
_AMOUNT = re.compile(r"([+-]?)([0-9]+)(?:\.([0-9]+))?")


class CurrencyError(ValueError):
    """An unknown or ill-formed ISO 4217 currency code."""


class MoneyError(ValueError):
    """An operation that would lose exactness or mix currencies."""


def exponent(currency: str) -> int:
    """Number of minor-unit digits of `currency` (USD 2, JPY 0, KWD 3)."""
    if not isinstance(currency, str) or not _CODE.fullmatch(currency):
        raise CurrencyError(f"ill-formed currency code {currency!r}: expected 3 upper-case letters")
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise CurrencyError(f"unknown currency {currency!r}") from None


def _require_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MoneyError(f"{what} must be an int, got {type(value).__name__} {value!r} (G1: no floats)")
    return value


def _div_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half-up (ties away from zero); denominator > 0."""
    quotient, remainder = divmod(abs(numerator), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return -quotient if numerator < 0 else quotient


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: `amount_minor` minor units (cents, yen, fils) of `currency`.

    Equality across currencies is simply False; ordering and arithmetic across
    currencies raise `MoneyError`.
    """

    amount_minor: int
    currency: str = DEFAULT_CURRENCY

    def __post_init__(self) -> None:
        _require_int(self.amount_minor, "amount_minor")
        exponent(self.currency)

    # -- constructors -------------------------------------------------------
    @classmethod
    def zero(cls, currency: str = DEFAULT_CURRENCY) -> Money:
        return cls(0, currency)

    @classmethod
    def from_decimal(cls, value: Decimal | int, currency: str = DEFAULT_CURRENCY) -> Money:
        """Exact conversion from major units; refuses values finer than the minor unit.

        The check is on the value, so ``Decimal("1.500")`` is accepted for EUR
        (trailing zeros are an artefact of Decimal arithmetic) but
        ``Decimal("1.505")`` is refused.  Use `round_half_up` to round.
        """
        if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
            raise MoneyError(f"expected a Decimal or int, got {type(value).__name__} {value!r} (G1: no floats)")
        exp = exponent(currency)
        if isinstance(value, int):
            return cls(value * 10**exp, currency)
        if not value.is_finite():
            raise MoneyError(f"not a finite amount: {value!r}")
        numerator, denominator = value.as_integer_ratio()
        minor, rest = divmod(numerator * 10**exp, denominator)
        if rest:
            raise MoneyError(
                f"{value} has more decimal places than the {exp} {currency} allows: "
                "round explicitly with round_half_up"
            )
        return cls(minor, currency)

    @classmethod
    def parse(cls, text: str, currency: str = DEFAULT_CURRENCY) -> Money:
        """Parse a plain decimal string such as ``"150.00"``, ``"-3.5"`` or ``"500"``.

        Fewer decimals than the currency has are fine; more are refused, even
        when they are zeros (``"1.000"`` for EUR), as is any other syntax
        (exponents, separators, spaces inside, currency symbols).
        """
        exp = exponent(currency)
        if not isinstance(text, str):
            raise MoneyError(f"expected a string, got {type(text).__name__} {text!r}")
        match = _AMOUNT.fullmatch(text.strip())
        if match is None:
            raise MoneyError(f"not a decimal amount: {text!r}")
        sign, whole, fraction = match.group(1), match.group(2), match.group(3) or ""
        if len(fraction) > exp:
            raise MoneyError(
                f"{text!r} has {len(fraction)} decimal place(s) but {currency} allows at most {exp}"
            )
        minor = int(whole) * 10**exp + (int(fraction.ljust(exp, "0")) if exp else 0)
        return cls(-minor if sign == "-" else minor, currency)

    # -- conversions --------------------------------------------------------
    def _digits(self) -> str:
        exp = exponent(self.currency)
        sign = "-" if self.amount_minor < 0 else ""
        digits = str(abs(self.amount_minor)).rjust(exp + 1, "0")
        if exp == 0:
            return sign + digits
        return f"{sign}{digits[:-exp]}.{digits[-exp:]}"

    def to_decimal(self) -> Decimal:
        """The exact amount in major units, with the currency's number of places."""
        return Decimal(self._digits())

    def format(self) -> str:
        """``"150.00 EUR"``, ``"-0.05 USD"``, ``"500 JPY"`` (no grouping)."""
        return f"{self._digits()} {self.currency}"

    def __str__(self) -> str:
        return self.format()

    def is_zero(self) -> bool:
        return self.amount_minor == 0

    # -- arithmetic ---------------------------------------------------------
    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise MoneyError(f"cannot mix currencies: {self} and {other}")

    def __add__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_minor, self.currency)

    def __abs__(self) -> Money:
        return Money(abs(self.amount_minor), self.currency)

    def __mul__(self, factor: int) -> Money:
        """Multiply by an int; floats, Decimals and bools are refused (prorate instead)."""
        return Money(self.amount_minor * _require_int(factor, "multiplier"), self.currency)

    __rmul__ = __mul__

    def _cmp(self, other: object) -> int | None:
        """Sign of self - other, or None when `other` is not Money."""
        if not isinstance(other, Money):
            return None
        self._same(other)
        return (self.amount_minor > other.amount_minor) - (self.amount_minor < other.amount_minor)

    def __lt__(self, other: object) -> bool:
        c = self._cmp(other)
        return NotImplemented if c is None else c < 0

    def __le__(self, other: object) -> bool:
        c = self._cmp(other)
        return NotImplemented if c is None else c <= 0

    def __gt__(self, other: object) -> bool:
        c = self._cmp(other)
        return NotImplemented if c is None else c > 0

    def __ge__(self, other: object) -> bool:
        c = self._cmp(other)
        return NotImplemented if c is None else c >= 0


def round_half_up(value: Decimal | int, currency: str = DEFAULT_CURRENCY) -> Money:
    """Round an exact amount in major units ONCE to the currency's minor unit.

    Half-up means ties go away from zero, for negatives too:
    1.005 -> 1.01 and -1.005 -> -1.01 (USD); 2.5 -> 3 and -2.5 -> -3 (JPY).
    The arithmetic is exact whatever the size of the Decimal.
    """
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise MoneyError(f"expected a Decimal or int, got {type(value).__name__} {value!r} (G1: no floats)")
    exp = exponent(currency)
    if isinstance(value, Decimal) and not value.is_finite():
        raise MoneyError(f"not a finite amount: {value!r}")
    numerator, denominator = value.as_integer_ratio()
    return Money(_div_half_up(numerator * 10**exp, denominator), currency)


def allocate(money: Money, weights: Sequence[int]) -> list[Money]:
    """Split `money` in proportion to integer `weights`; the parts sum exactly to it.

    Largest remainder: every part gets the floor of its exact share, then the
    leftover minor units go one each to the largest fractional remainders
    (earlier parts win ties).  Each part is within one minor unit of its exact
    share, zero weights get zero, and negative amounts split symmetrically.
    """
    weights = [_require_int(w, "weight") for w in weights]
    if not weights:
        raise MoneyError("allocate needs at least one weight")
    if any(w < 0 for w in weights):
        raise MoneyError(f"weights must be >= 0: {weights}")
    total = sum(weights)
    if total == 0:
        raise MoneyError("weights must not all be zero")
    amount = abs(money.amount_minor)
    shares = [divmod(amount * w, total) for w in weights]
    parts = [q for q, _ in shares]
    leftover = amount - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-shares[i][1], i))
    for i in order[:leftover]:
        parts[i] += 1
    sign = -1 if money.amount_minor < 0 else 1
    return [Money(sign * p, money.currency) for p in parts]


def _check_seconds(used_seconds: int, total_seconds: int) -> None:
    for name, value in (("used_seconds", used_seconds), ("total_seconds", total_seconds)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if total_seconds <= 0:
        raise ValueError(f"total_seconds must be > 0, got {total_seconds}")
    if not 0 <= used_seconds <= total_seconds:
        raise ValueError(f"used_seconds must be within [0, {total_seconds}], got {used_seconds}")


def prorate(amount: Money, used_seconds: int, total_seconds: int) -> Money:
    """amount * used / total, exact to the second, rounded once half-up to the minor unit.

    Pieces prorated independently may not add up to the whole: for a period
    split into n pieces, |sum(pieces) - amount| <= n // 2 minor units (each
    rounding errs by at most half a unit).  Use `prorate_cumulative` when the
    pieces must sum exactly.
    """
    _check_seconds(used_seconds, total_seconds)
    return Money(_div_half_up(amount.amount_minor * used_seconds, total_seconds), amount.currency)


def prorate_cumulative(amount: Money, used_seconds_list: Sequence[int], total_seconds: int) -> list[Money]:
    """Prorate consecutive pieces of one period so that they sum EXACTLY.

    piece_i = prorate(amount, c_i) - prorate(amount, c_{i-1}) where c_i is the
    running total of `used_seconds_list`; the pieces therefore telescope to
    ``prorate(amount, sum(used_seconds_list), total_seconds)``, i.e. exactly
    `amount` when the pieces cover the whole period.  Each piece is within one
    minor unit (strictly) of its exact share.
    """
    pieces: list[Money] = []
    cumulative = 0
    previous = Money.zero(amount.currency)
    for used in used_seconds_list:
        _check_seconds(used, total_seconds)
        cumulative += used
        if cumulative > total_seconds:
            raise ValueError(f"pieces add up to more than total_seconds={total_seconds}")
        current = prorate(amount, cumulative, total_seconds)
        pieces.append(current - previous)
        previous = current
    return pieces
