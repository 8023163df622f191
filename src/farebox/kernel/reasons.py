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
SUBSCRIPTION_EXPIRED = _reason(
    "subscription_expired", "Your subscription has ended. Please upgrade your plan to continue."
)
PAYMENT_OVERDUE = _reason("payment_overdue", "Your payment is overdue and the grace period has expired.")
UPGRADE_REQUIRED = _reason(
    "upgrade_required",
    "Your last session went over your plan's attendee limit. Please upgrade your plan before starting new sessions.",
)
DURATION_EXCEEDED = _reason("duration_exceeded", "This occurrence has reached its maximum length.")
WAITING_ROOM = _reason("waiting_room", "The room is full; you are number {position} in the waiting room.")
REGISTERED = _reason("registered", "Registered; registrations are never counted.")
LEFT = _reason("left", "Left the occurrence.")
WINDOW_OPEN = _reason("window_open", "This conversation's billable session is already open; nothing more is counted.")
NOT_BILLABLE_OUTBOUND = _reason(
    "not_billable_outbound", "Outbound-only sessions are not billed on an Answered only plan."
)
STARTED = _reason("started", "The occurrence is open until its deadline.")
COHOSTS_NOT_AVAILABLE = _reason(
    "cohosts_not_available", "Co-hosts are not part of your plan; upgrade to a plan with co-hosts to add them."
)
HOST_SEATS_FULL = _reason(
    "host_seats_full",
    "Every host seat of your plan is taken in this occurrence ({seats}); add a co-host instead, or free a seat.",
)
FEATURE_AVAILABLE = _reason("feature_available", "Your plan includes {feature}.")
FEATURE_NOT_AVAILABLE = _reason(
    "feature_not_available", "Your plan does not include {feature}; upgrade to a plan that does."
)
# Warnings (G15): an admitted answer may carry these, each with its code beside its text.
SESSION_LIMIT_ALMOST_REACHED = _reason("session_limit_almost_reached", "Session limit almost reached")
SESSION_LIMIT_NOW_REACHED = _reason("session_limit_now_reached", "Session limit has been reached")
OVER_ATTENDEE_LIMIT = _reason(
    "over_attendee_limit",
    "This occurrence is over its limit of {limit} attendees; please upgrade your plan before starting new sessions.",
)
OCCURRENCE_ENDED = _reason("occurrence_ended", "The occurrence has ended; everyone in it was removed.")
SESSION_LIMIT_NOT_AVAILABLE = _reason("session_limit_not_available", "A session limit can be set on paid plans only.")
SESSION_LIMIT_INVALID = _reason("session_limit_invalid", "The session limit must be a whole number greater than zero.")
SESSION_LIMIT_ABOVE_BASE = _reason(
    "session_limit_above_base",
    "This plan does not price extra sessions: the limit cannot exceed the plan's base limit.",
)
EVENT_CONFLICT = _reason(
    "event_conflict", "An event with this source and id was already received with a different payload."
)
EVENT_INVALID = _reason("event_invalid", "{detail}")
EVENT_IN_FUTURE = _reason(
    "event_in_future", "This event is dated {time}, more than {skew} ahead of now; it was not counted."
)
EVENT_BEFORE_SUBSCRIPTION = _reason(
    "event_before_subscription",
    "This event is dated {time}, before the tenant's first subscription started ({start}); it was not counted.",
)
EVENT_PERIOD_INVOICED = _reason(
    "event_period_invoiced",
    "This event is dated {time}, in a billing period whose invoice was issued at {issued}; it was not counted.",
)

# --- requests ---------------------------------------------------------------
VALIDATION_ERROR = _reason("validation_error", "The request is not valid: {detail}")
NOT_FOUND = _reason("not_found", "{what} not found.")
UNAUTHORIZED = _reason("unauthorized", "A valid API key is required.")
FORBIDDEN = _reason("forbidden", "Your role does not allow this.")
IDEMPOTENCY_CONFLICT = _reason(
    "idempotency_conflict", "This idempotency key was already used with a different request."
)
CONFLICT = _reason("conflict", "{detail}")
STORAGE_UNAVAILABLE = _reason(
    "storage_unavailable",
    "The database connection was lost; nothing was changed. Retry the request (with the same Idempotency-Key).",
)
INTERNAL_ERROR = _reason("internal_error", "An unexpected error occurred; nothing was changed.")
METHOD_NOT_ALLOWED = _reason("method_not_allowed", "{detail}")
HTTP_ERROR = _reason("http_error", "{detail}")

# --- catalog ----------------------------------------------------------------
CATALOG_INVALID = _reason("catalog_invalid", "{detail}")
PLAN_NOT_FOUND = _reason("plan_not_found", "Plan {plan!r} is not in catalog {catalog!r}.")
CATALOG_NOT_FOUND = _reason("catalog_not_found", "Catalog {catalog!r} is not loaded.")

# --- tenants and test clocks --------------------------------------------------
TENANT_EXISTS = _reason("tenant_exists", "A tenant with id {tenant!r} already exists.")
MEMBER_EXISTS = _reason("member_exists", "{email} is already a member of this tenant.")
CLOCK_BACKWARDS = _reason("clock_backwards", "A test clock only moves forward (it is at {now}).")

# --- subscription lifecycle ----------------------------------------------------
TRIAL_ALREADY_USED = _reason(
    "trial_already_used", "The free trial is available once per tenant and has already been used."
)
TRIAL_NOT_OFFERED = _reason("trial_not_offered", "Plan {plan!r} has no free trial.")
SAME_PLAN = _reason("same_plan", "The tenant is already on plan {plan!r}.")
CHANGE_DATE_IN_PAST = _reason("change_date_in_past", "A plan change cannot be scheduled in the past (it is {now}).")
INVALID_TRANSITION = _reason("invalid_transition", "This subscription is {status}, so it cannot {action}.")
NO_SCHEDULED_CHANGE = _reason("no_scheduled_change", "There is no scheduled plan change to cancel.")
NO_SUBSCRIPTION = _reason("no_subscription", "The tenant has no subscription.")
SALES_ASSISTED_PLAN = _reason(
    "sales_assisted_plan", "Plan {plan!r} is sold by our sales team: request a contact instead."
)
NOT_SALES_ASSISTED = _reason("not_sales_assisted", "Plan {plan!r} is self-serve: subscribe to it directly.")
# --- invoices and payments ------------------------------------------------------
PAYMENT_METHOD_REFUSED = _reason("payment_method_refused", "The payment method was refused: {detail}")
INVOICE_NOT_OPEN = _reason("invoice_not_open", "This invoice is {status}; only an open invoice can be {action}.")
NO_CREDIT_BALANCE = _reason("no_credit_balance", "There is no credit balance in {currency} to refund.")
CREDIT_REFUND_TOO_LARGE = _reason(
    "credit_refund_too_large", "The credit balance is {balance}; a refund cannot exceed it."
)
NO_CHARGE_TO_REFUND = _reason(
    "no_charge_to_refund",
    "No card payment is left to refund {amount} to; the credit stays on the balance for the next invoices.",
)
PROVIDER_SIGNATURE_INVALID = _reason(
    "provider_signature_invalid", "The payment provider's signature is missing or wrong."
)
# --- security ------------------------------------------------------------------
EXPIRY_IN_PAST = _reason("expiry_in_past", "An API key's expiry must be in the future (it is {now}).")
WEBHOOK_ADDRESS_REFUSED = _reason(
    "webhook_address_refused",
    "The webhook URL points to {address}, a loopback, private or link-local address; the operator may allow such "
    "addresses with FAREBOX_WEBHOOK_ALLOW_PRIVATE=true.",
)
API_KEY_INACTIVE = _reason("api_key_inactive", "This API key is revoked or expired; issue a new key instead.")
SIGN_IN_RATE_LIMITED = _reason(
    "sign_in_rate_limited", "Too many sign-in links were asked for; try again in {minutes} minutes."
)
BODY_TOO_LARGE = _reason("body_too_large", "The request body is larger than {limit} bytes.")
INVALID_JSON = _reason("invalid_json", "The body is not valid JSON{where}.")
# --- e-mail ---------------------------------------------------------------------
EMAIL_NOT_SENT = _reason("email_not_sent", "The e-mail could not be sent: {detail}")
PAYMENT_METHOD_REQUIRED = _reason(
    "payment_method_required", "Plan {plan!r} needs a payment method on file: add a card first."
)


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
