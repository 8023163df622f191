"""Period pools and limits: credits (L3, L4), billable sessions (A6, A8), trials (A3).

A period meter is one counter per (subscription, meter, period).  What may
still be used is decided here from the plan's limit, the units carried
forward on an upgrade (L4), the tenant's own session limit (A6) and the
trial's usage bound (A3).  Pure: the caller passes every number in.
"""

from __future__ import annotations

from dataclasses import dataclass

from farebox.catalog.domain import Limit, MeterKind, Plan, Policy
from farebox.kernel import reasons
from farebox.metering.domain.admission import Warning

ALMOST_REACHED = reasons.SESSION_LIMIT_ALMOST_REACHED.template
REACHED = reasons.SESSION_LIMIT_NOW_REACHED.template
WARNING_PERCENT = 80  # A6


@dataclass(frozen=True, slots=True)
class PoolRule:
    """What stops a period pool: a cap and the reason given at it, or nothing (overage)."""

    cap: int | None  # None: no stop (overage billed in arrears, L8/A8; or unlimited)
    reason: reasons.Reason | None  # the refusal at the cap
    included: int | None  # what the plan includes (+ carried): overage starts above it
    warn_at: int | None  # the limit that A6 warnings are measured against


def exhausted_reason(kind: MeterKind) -> reasons.Reason:
    return reasons.SESSION_LIMIT_REACHED if kind is MeterKind.BILLABLE_SESSIONS else reasons.CREDITS_EXHAUSTED


def pool_rule(
    plan: Plan,
    limit: Limit | None,
    kind: MeterKind,
    *,
    carried_in: int = 0,
    customer_limit: int | None = None,
    trial_bound: int | None = None,
) -> PoolRule:
    """The rule for one more unit of a period meter.

    - a trial's usage bound stops at the bound with `trial_exhausted` (A3);
    - a customer-set limit (A6) stops at that number, on plans that allow one;
    - `hard` stops at included + carried (L7); `overage` goes on (L8, A8).
    """
    if trial_bound is not None:
        return PoolRule(trial_bound, reasons.TRIAL_EXHAUSTED, trial_bound, trial_bound)
    if limit is None or limit.included is None:
        return PoolRule(None, None, None, None)
    included = limit.included + carried_in
    if customer_limit is not None and limit.customer_limit:
        return PoolRule(customer_limit, reasons.SESSION_LIMIT_REACHED, included, customer_limit)
    if limit.policy is Policy.OVERAGE or limit.policy is Policy.SOFT:
        return PoolRule(None, None, included, included)
    return PoolRule(included, exhausted_reason(kind), included, included)


def session_warnings(used: int, rule: PoolRule, kind: MeterKind) -> tuple[Warning, ...]:
    """A6: 'almost reached' from 80% of the limit, 'has been reached' at 100% (each with its code, G15)."""
    if kind is not MeterKind.BILLABLE_SESSIONS or not rule.warn_at:
        return ()
    if used >= rule.warn_at:
        return (Warning.of(reasons.SESSION_LIMIT_NOW_REACHED),)
    if used * 100 >= rule.warn_at * WARNING_PERCENT:
        return (Warning.of(reasons.SESSION_LIMIT_ALMOST_REACHED),)
    return ()


def overage(used: int, included: int | None) -> int:
    """Units beyond what the period includes (L8, A8); billed in arrears."""
    return 0 if included is None else max(0, used - included)


def carried_forward(included: int | None, carried_in: int, used: int) -> int:
    """L4: the credits left at an upgrade move to the new plan's pool."""
    if included is None:
        return 0
    return max(0, included + carried_in - used)


def validate_session_limit(plan: Plan, limit: Limit | None, sessions: int) -> reasons.Reason | None:
    """A6: an integer > 0 on a plan that allows a customer limit; above the
    plan's base only if the plan prices overage (Decision)."""
    if limit is None or not limit.customer_limit or plan.is_free:
        return reasons.SESSION_LIMIT_NOT_AVAILABLE
    if sessions <= 0:
        return reasons.SESSION_LIMIT_INVALID
    if limit.included is not None and sessions > limit.included and limit.policy is not Policy.OVERAGE:
        return reasons.SESSION_LIMIT_ABOVE_BASE
    return None


def percent(used: int, of: int | None) -> int | None:
    if not of:
        return None
    return used * 100 // of
