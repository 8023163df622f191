"""Entitlements: may this tenant use a feature of its plan (S2, L5)?

A platform asks before it shows or runs a premium feature (SSO, co-hosts,
analytics...).  The answer has the shape of an admission decision: allowed or
not, with a stable reason code and a message (G15).  A tenant whose
subscription no longer admits (G9, G10) is refused with that reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from farebox.bootstrap import Farebox
from farebox.clocks.service import now_and_current
from farebox.kernel import reasons
from farebox.kernel.access import Principal, require_tenant_access
from farebox.kernel.reasons import DomainError
from farebox.metering.domain.admission import entitlement, refuse
from farebox.subscriptions.domain.states import admission_refusal

FEATURE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True, slots=True)
class Entitlement:
    tenant_id: str
    feature: str
    allowed: bool
    reason: str
    message: str
    plan: str | None  # the plan the answer was read from
    seats: int | None  # host seats of that plan (S2); None: unlimited
    features: tuple[str, ...]  # every feature of that plan

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "feature": self.feature,
            "allowed": self.allowed,
            "reason": self.reason,
            "message": self.message,
            "plan": self.plan,
            "seats": self.seats,
            "features": list(self.features),
        }


def check(fb: Farebox, actor: Principal, tenant_id: str, feature: str) -> Entitlement:
    """Whether the tenant's current plan includes `feature` (a catalog's `features` flag)."""
    require_tenant_access(actor, tenant_id)
    if not FEATURE.match(feature):
        raise DomainError(
            reasons.VALIDATION_ERROR, detail="a feature is a lower-case name such as sso", details={"field": "feature"}
        )
    with fb.uow(readonly=True) as uow:
        now, sub = now_and_current(uow, fb.clock, tenant_id)
    refusal = admission_refusal(sub, now)
    if sub is None or refusal is not None:
        decision = refuse(refusal or reasons.SUBSCRIPTION_EXPIRED)
    else:
        decision = entitlement(sub.plan, feature)
    plan = sub.plan if sub is not None else None
    return Entitlement(
        tenant_id,
        feature,
        decision.admitted,
        decision.reason,
        decision.message,
        plan.code if plan else None,
        plan.seats if plan else None,
        tuple(sorted(plan.features)) if plan else (),
    )
