"""Reason codes as constants, taken from `farebox.kernel.reasons` (the one registry; docs/admission.md).

Compare an answer's `reason` (a decision) or `code` (an error) with these instead of string literals:

    if decision.reason == reasons.CREDITS_EXHAUSTED: ...

The names below are spelled out for editors and type checkers; a reason added to the registry
later is here too (the loop at the end), under its registry name.  A test checks both."""

from __future__ import annotations

from typing import Final

from farebox.kernel import reasons as _registry

ADMITTED: Final[str] = _registry.ADMITTED.code
ALREADY_COUNTED: Final[str] = _registry.ALREADY_COUNTED.code
NOT_BILLABLE_MEMBER: Final[str] = _registry.NOT_BILLABLE_MEMBER.code
ATTENDEE_CAP_REACHED: Final[str] = _registry.ATTENDEE_CAP_REACHED.code
CREDITS_EXHAUSTED: Final[str] = _registry.CREDITS_EXHAUSTED.code
SESSION_LIMIT_REACHED: Final[str] = _registry.SESSION_LIMIT_REACHED.code
TRIAL_EXHAUSTED: Final[str] = _registry.TRIAL_EXHAUSTED.code
SUBSCRIPTION_EXPIRED: Final[str] = _registry.SUBSCRIPTION_EXPIRED.code
PAYMENT_OVERDUE: Final[str] = _registry.PAYMENT_OVERDUE.code
UPGRADE_REQUIRED: Final[str] = _registry.UPGRADE_REQUIRED.code
DURATION_EXCEEDED: Final[str] = _registry.DURATION_EXCEEDED.code
WAITING_ROOM: Final[str] = _registry.WAITING_ROOM.code
REGISTERED: Final[str] = _registry.REGISTERED.code
LEFT: Final[str] = _registry.LEFT.code
WINDOW_OPEN: Final[str] = _registry.WINDOW_OPEN.code
NOT_BILLABLE_OUTBOUND: Final[str] = _registry.NOT_BILLABLE_OUTBOUND.code
STARTED: Final[str] = _registry.STARTED.code
OCCURRENCE_ENDED: Final[str] = _registry.OCCURRENCE_ENDED.code
SESSION_LIMIT_NOT_AVAILABLE: Final[str] = _registry.SESSION_LIMIT_NOT_AVAILABLE.code
SESSION_LIMIT_INVALID: Final[str] = _registry.SESSION_LIMIT_INVALID.code
SESSION_LIMIT_ABOVE_BASE: Final[str] = _registry.SESSION_LIMIT_ABOVE_BASE.code
EVENT_CONFLICT: Final[str] = _registry.EVENT_CONFLICT.code
EVENT_INVALID: Final[str] = _registry.EVENT_INVALID.code
VALIDATION_ERROR: Final[str] = _registry.VALIDATION_ERROR.code
NOT_FOUND: Final[str] = _registry.NOT_FOUND.code
UNAUTHORIZED: Final[str] = _registry.UNAUTHORIZED.code
FORBIDDEN: Final[str] = _registry.FORBIDDEN.code
IDEMPOTENCY_CONFLICT: Final[str] = _registry.IDEMPOTENCY_CONFLICT.code
CONFLICT: Final[str] = _registry.CONFLICT.code
CATALOG_INVALID: Final[str] = _registry.CATALOG_INVALID.code
PLAN_NOT_FOUND: Final[str] = _registry.PLAN_NOT_FOUND.code
CATALOG_NOT_FOUND: Final[str] = _registry.CATALOG_NOT_FOUND.code
TENANT_EXISTS: Final[str] = _registry.TENANT_EXISTS.code
MEMBER_EXISTS: Final[str] = _registry.MEMBER_EXISTS.code
CLOCK_BACKWARDS: Final[str] = _registry.CLOCK_BACKWARDS.code
TRIAL_ALREADY_USED: Final[str] = _registry.TRIAL_ALREADY_USED.code
TRIAL_NOT_OFFERED: Final[str] = _registry.TRIAL_NOT_OFFERED.code
SAME_PLAN: Final[str] = _registry.SAME_PLAN.code
CHANGE_DATE_IN_PAST: Final[str] = _registry.CHANGE_DATE_IN_PAST.code
INVALID_TRANSITION: Final[str] = _registry.INVALID_TRANSITION.code
NO_SCHEDULED_CHANGE: Final[str] = _registry.NO_SCHEDULED_CHANGE.code
NO_SUBSCRIPTION: Final[str] = _registry.NO_SUBSCRIPTION.code
SALES_ASSISTED_PLAN: Final[str] = _registry.SALES_ASSISTED_PLAN.code
NOT_SALES_ASSISTED: Final[str] = _registry.NOT_SALES_ASSISTED.code
PAYMENT_METHOD_REFUSED: Final[str] = _registry.PAYMENT_METHOD_REFUSED.code
INVOICE_NOT_OPEN: Final[str] = _registry.INVOICE_NOT_OPEN.code
PROVIDER_SIGNATURE_INVALID: Final[str] = _registry.PROVIDER_SIGNATURE_INVALID.code
STORAGE_UNAVAILABLE: Final[str] = "storage_unavailable"  # 503 at the API edge: retry (the client does)
INTERNAL_ERROR: Final[str] = "internal_error"

# every reason of the registry, also those added after this list was written
globals().update(
    {
        name: value.code
        for name, value in vars(_registry).items()
        if isinstance(value, _registry.Reason) and name not in globals()
    }
)
