"""A tenant's billing details (G13): who an invoice is addressed to and which tax applies.

Pure: checks what an owner or admin sends and builds the `bill_to` block an invoice
keeps as it was when the invoice was issued (a later change never rewrites an issued
invoice). The tax rate is stored in basis points (2000 = 20 %).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FIELDS = ("billing_email", "legal_name", "billing_address", "tax_id", "tax_rate_bp")
MAX_TAX_RATE_BP = 10_000  # 100 %
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TAX_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 .\-/]*$")
PERCENT = re.compile(r"^([0-9]{1,3})(?:\.([0-9]{1,2}))?$")
LIMITS = {"billing_email": 254, "legal_name": 200, "billing_address": 1000, "tax_id": 64}


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    message: str


def percent_to_bp(text: str) -> int | None:
    """ "20" or "7.25" (percent, at most two decimals) as basis points; None when it is not one."""
    match = PERCENT.fullmatch(text.strip())
    if match is None:
        return None
    whole, fraction = match.group(1), (match.group(2) or "").ljust(2, "0")
    return int(whole) * 100 + int(fraction)


def bp_to_percent(bp: int) -> str:
    """2000 -> "20", 725 -> "7.25" (the form's text for a stored rate)."""
    whole, rest = divmod(bp, 100)
    return f"{whole}.{rest:02d}".rstrip("0").rstrip(".") if rest else str(whole)


def normalise(changes: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """The changes to store (text trimmed, "" clears a field) and what is wrong with them."""
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    for name, value in changes.items():
        if name not in FIELDS:
            problems.append(Problem(name, "is not a billing detail"))
        elif name == "tax_rate_bp":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TAX_RATE_BP:
                message = f"must be a whole number of basis points from 0 to {MAX_TAX_RATE_BP} (20 % is 2000)"
                problems.append(Problem(name, message))
            else:
                values[name] = value
        elif value is not None and not isinstance(value, str):
            problems.append(Problem(name, "must be text"))
        else:
            text = (value or "").replace("\r\n", "\n").strip()
            if name != "billing_address" and "\n" in text:
                problems.append(Problem(name, "must be one line"))
            elif len(text) > LIMITS[name]:
                problems.append(Problem(name, f"must be at most {LIMITS[name]} characters"))
            elif text and name == "billing_email" and not EMAIL.match(text):
                problems.append(Problem(name, f"{text!r} is not an e-mail address"))
            elif text and name == "tax_id" and not TAX_ID.match(text):
                problems.append(Problem(name, "letters, digits, spaces, '.', '-' and '/' only"))
            else:
                values[name] = text or None
    return values, problems


def bill_to(tenant: Mapping[str, Any]) -> dict[str, Any]:
    """What an invoice prints under *Billed to*, kept with the invoice when it is issued (G13)."""
    return {
        "name": tenant.get("legal_name") or tenant["name"],
        "email": tenant.get("billing_email"),
        "address": tenant.get("billing_address"),
    }
