"""The subscription state machine: every transition, explicitly, with its rule.

A subscription row is one plan on one tenant for a stretch of time.  A plan
change ends the row (`replaced`) and starts a new one, so a scheduled change
is simply a row in `upcoming` with a future `starts_at` (Kill Bill's
effective-dated events).  Nothing changes state except through `step`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from farebox.kernel import reasons
from farebox.kernel.reasons import DomainError
from farebox.subscriptions.domain.states import Status

S = Status


class Event(StrEnum):
    SUBSCRIBE_FREE = "subscribe_free"  # S1, L5: free forever
    SUBSCRIBE_PAID = "subscribe_paid"  # G13: billed in advance
    START_TRIAL = "start_trial"  # A3
    SCHEDULE = "schedule"  # G7: an upcoming subscription is created
    START_SCHEDULED = "start_scheduled"  # G7: the upcoming one starts (as free or active)
    CANCEL_SCHEDULED = "cancel_scheduled"  # G7, L9: called off before it starts
    REPLACE = "replace"  # G7: a plan change ends this subscription
    RENEW = "renew"  # G2: a new period
    TRIAL_END = "trial_end"  # A3: days or usage ran out
    CANCEL = "cancel"  # G8: at period end
    REACTIVATE = "reactivate"  # G8: undo before the end
    CANCELLATION_EFFECTIVE = "cancellation_effective"  # G8, L10: to free plan (canceled) or expired
    PAYMENT_FAILED = "payment_failed"  # G9, A7
    PAYMENT_SETTLED = "payment_settled"  # G9
    GRACE_EXPIRED = "grace_expired"  # G9: admissions refused from now on


# How a refusal names a status and an event to a person (no internal state names, no "A active").
STATUS_WORDS: dict[Status, str] = {
    Status.FREE: "on a free plan",
    Status.TRIALING: "in its trial",
    Status.ACTIVE: "active",
    Status.PAYMENT_ISSUE: "waiting for a failed payment to be settled",
    Status.CANCELLATION_SCHEDULED: "already set to end with its current period",
    Status.CANCELED: "canceled",
    Status.EXPIRED: "expired",
    Status.UPCOMING: "scheduled and not started yet",
    Status.REPLACED: "replaced by a plan change",
    Status.SCHEDULE_CANCELED: "a scheduled change that was called off",
}
ACTION_WORDS: dict[Event, str] = {
    Event.CANCEL: "be cancelled",
    Event.REACTIVATE: "be reactivated",
    Event.START_TRIAL: "start a trial",
    Event.SCHEDULE: "take a scheduled plan change",
    Event.CANCEL_SCHEDULED: "be called off",
    Event.REPLACE: "change plan",
    Event.RENEW: "be renewed",
    Event.PAYMENT_FAILED: "record a failed payment",
    Event.PAYMENT_SETTLED: "settle a payment",
}


def describe(status: Status | None) -> str:
    """A status in words for a message: "active", "already set to end with its current period"."""
    return "missing" if status is None else STATUS_WORDS.get(status, status.value.replace("_", " "))


@dataclass(frozen=True, slots=True)
class Rule:
    source: Status | None
    event: Event
    target: Status
    rule: str  # the brief's rule ids
    note: str = ""


LIVE_PAID = (S.ACTIVE, S.PAYMENT_ISSUE, S.CANCELLATION_SCHEDULED)

RULES: tuple[Rule, ...] = (
    Rule(None, Event.SUBSCRIBE_FREE, S.FREE, "S1 L5", "a free plan, no card, forever"),
    Rule(None, Event.SUBSCRIBE_PAID, S.ACTIVE, "G13 S7", "paid plan, first period billed in advance"),
    Rule(None, Event.START_TRIAL, S.TRIALING, "A3 A4", "once per tenant"),
    Rule(None, Event.SCHEDULE, S.UPCOMING, "G7 L9", "a plan change at period end or on a date"),
    Rule(S.UPCOMING, Event.START_SCHEDULED, S.ACTIVE, "G7", "a paid plan starts on its date"),
    Rule(S.UPCOMING, Event.START_SCHEDULED, S.FREE, "G7 L9", "a downgrade to free starts on its date"),
    Rule(
        S.UPCOMING,
        Event.START_SCHEDULED,
        S.PAYMENT_ISSUE,
        "G7 G9",
        "starts while a failed payment is open: the grace carries over",
    ),
    Rule(
        S.UPCOMING, Event.CANCEL_SCHEDULED, S.SCHEDULE_CANCELED, "G7 L9", "called off, or replaced by a second schedule"
    ),
    *(
        Rule(s, Event.REPLACE, S.REPLACED, "G7 L4 L11", "ended by a plan change")
        for s in (S.FREE, S.TRIALING, S.ACTIVE, S.PAYMENT_ISSUE)
    ),  # PAYMENT_ISSUE: scheduled changes only
    *(Rule(s, Event.RENEW, s, "G2 G13", "next period") for s in (S.FREE, *LIVE_PAID)),
    Rule(
        S.TRIALING,
        Event.TRIAL_END,
        S.EXPIRED,
        "A3 G10",
        "days or usage ran out (to the free plan if the catalog has one)",
    ),
    Rule(S.TRIALING, Event.CANCEL, S.CANCELLATION_SCHEDULED, "G8", "effective when the trial ends"),
    Rule(S.ACTIVE, Event.CANCEL, S.CANCELLATION_SCHEDULED, "G8 S7 L10", "effective at period end"),
    Rule(S.PAYMENT_ISSUE, Event.CANCEL, S.CANCELLATION_SCHEDULED, "G8 G9", "effective at period end; grace still runs"),
    Rule(S.CANCELLATION_SCHEDULED, Event.REACTIVATE, S.ACTIVE, "G8"),
    Rule(S.CANCELLATION_SCHEDULED, Event.REACTIVATE, S.TRIALING, "G8 A3", "a cancelled trial resumes"),
    Rule(S.CANCELLATION_SCHEDULED, Event.REACTIVATE, S.PAYMENT_ISSUE, "G8 G9", "the failed payment is still open"),
    Rule(
        S.CANCELLATION_SCHEDULED,
        Event.CANCELLATION_EFFECTIVE,
        S.CANCELED,
        "G8 L10",
        "the catalog has a free plan: it starts now",
    ),
    Rule(S.CANCELLATION_SCHEDULED, Event.CANCELLATION_EFFECTIVE, S.EXPIRED, "G8 A4", "no free plan"),
    Rule(
        S.ACTIVE,
        Event.PAYMENT_FAILED,
        S.PAYMENT_ISSUE,
        "G9 A7",
        "a payment failed (first invoice, upgrade, renewal, overdue transfer): grace starts",
    ),
    Rule(
        S.CANCELLATION_SCHEDULED,
        Event.PAYMENT_FAILED,
        S.CANCELLATION_SCHEDULED,
        "G9",
        "grace starts; the cancellation stays",
    ),
    Rule(S.PAYMENT_ISSUE, Event.PAYMENT_SETTLED, S.ACTIVE, "G9"),
    Rule(S.CANCELLATION_SCHEDULED, Event.PAYMENT_SETTLED, S.CANCELLATION_SCHEDULED, "G9"),
    Rule(S.PAYMENT_ISSUE, Event.GRACE_EXPIRED, S.PAYMENT_ISSUE, "G9", "new admissions refused: payment_overdue"),
    Rule(
        S.CANCELLATION_SCHEDULED,
        Event.GRACE_EXPIRED,
        S.CANCELLATION_SCHEDULED,
        "G9",
        "new admissions refused: payment_overdue",
    ),
)

_BY_KEY: dict[tuple[Status | None, Event], tuple[Status, ...]] = {}
for _r in RULES:
    _BY_KEY[(_r.source, _r.event)] = (*_BY_KEY.get((_r.source, _r.event), ()), _r.target)


def allowed(source: Status | None, event: Event) -> tuple[Status, ...]:
    """The statuses `event` may lead to from `source` (empty: not allowed)."""
    return _BY_KEY.get((source, event), ())


def step(source: Status | None, event: Event, target: Status | None = None) -> Status:
    """The status after `event`; `target` picks one when the event has several
    outcomes.  An event the machine does not allow is refused (a reason code)."""
    targets = allowed(source, event)
    if not targets or (target is not None and target not in targets) or (target is None and len(targets) > 1):
        action = ACTION_WORDS.get(event, event.value.replace("_", " "))
        raise DomainError(reasons.INVALID_TRANSITION, status=describe(source), action=action)
    return target if target is not None else targets[0]
