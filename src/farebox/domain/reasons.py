"""Stable reason codes (G15).

Every refusal farebox gives carries one of these codes and a human message.
Codes are part of the public contract: never rename one, only add.  The
HTTP status for each code is decided once, at the API edge
(`farebox.entrypoints.api.errors`), not here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    template: str

    def message(self, **params: Any) -> str:
        return self.template.format(**params) if params else self.template


REGISTRY: dict[str, Reason] = {}


def _reason(code: str, template: str) -> Reason:
    if code in REGISTRY:
        raise ValueError(f"duplicate reason code {code!r}")
    reason = Reason(code, template)
    REGISTRY[code] = reason
    return reason


# --- admission (hot path) ---------------------------------------------------
ADMITTED = _reason("admitted", "Admitted.")
ALREADY_COUNTED = _reason("already_counted", "Already counted for this occurrence; admitted without using more.")
NOT_BILLABLE_MEMBER = _reason("not_billable_member", "Team members and co-hosts are never counted.")
ATTENDEE_CAP_REACHED = _reason("attendee_cap_reached", "This occurrence has reached its attendee limit of {limit}.")
CREDITS_EXHAUSTED = _reason("credits_exhausted", "Your attendee credits for this period are used up.")
SESSION_LIMIT_REACHED = _reason("session_limit_reached", "Session limit has been reached.")
TRIAL_EXHAUSTED = _reason("trial_exhausted", "Your subscription has ended. Please upgrade your plan to continue.")
SUBSCRIPTION_EXPIRED = _reason("subscription_expired", "Your subscription has ended. Please upgrade your plan to continue.")
PAYMENT_OVERDUE = _reason("payment_overdue", "Your payment is overdue and the grace period has expired.")
UPGRADE_REQUIRED = _reason("upgrade_required", "Your last session went over your plan's attendee limit. Please upgrade your plan before starting new sessions.")
DURATION_EXCEEDED = _reason("duration_exceeded", "This occurrence has reached its maximum length.")
WAITING_ROOM = _reason("waiting_room", "The room is full; you are number {position} in the waiting room.")

# --- requests ---------------------------------------------------------------
VALIDATION_ERROR = _reason("validation_error", "The request is not valid: {detail}")
NOT_FOUND = _reason("not_found", "{what} not found.")
UNAUTHORIZED = _reason("unauthorized", "A valid API key is required.")
FORBIDDEN = _reason("forbidden", "Your role does not allow this.")
IDEMPOTENCY_CONFLICT = _reason("idempotency_conflict", "This idempotency key was already used with a different request.")
CONFLICT = _reason("conflict", "{detail}")

# --- catalog ----------------------------------------------------------------
CATALOG_INVALID = _reason("catalog_invalid", "{detail}")
PLAN_NOT_FOUND = _reason("plan_not_found", "Plan {plan!r} is not in catalog {catalog!r}.")
CATALOG_NOT_FOUND = _reason("catalog_not_found", "Catalog {catalog!r} is not loaded.")

# --- tenants and test clocks --------------------------------------------------
TENANT_EXISTS = _reason("tenant_exists", "A tenant with id {tenant!r} already exists.")
MEMBER_EXISTS = _reason("member_exists", "{email} is already a member of this tenant.")
CLOCK_BACKWARDS = _reason("clock_backwards", "A test clock only moves forward (it is at {now}).")


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refusal: a stable code plus a human message (G15)."""

    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


class DomainError(Exception):
    """Raised by services when a request cannot be carried out.

    Carries a `Refusal`; the API maps `refusal.code` to an HTTP status.
    """

    def __init__(self, reason: Reason, /, *, details: dict[str, Any] | None = None, **params: Any) -> None:
        self.refusal = Refusal(reason.code, reason.message(**params), details or {})
        super().__init__(self.refusal.message)

    @property
    def code(self) -> str:
        return self.refusal.code
