"""Entitlements API: may this tenant use a feature (S2, L5)?"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from farebox.entrypoints.api.deps import FB, Caller
from farebox.subscriptions.services import entitlements as service

router = APIRouter(prefix="/v1/tenants/{tenant_id}", tags=["admission"])

FeatureName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=service.FEATURE.pattern,
        description="A plan feature: a lower-case name such as sso, cohosts, premium",
    ),
]


class EntitlementOut(BaseModel):
    tenant_id: str
    feature: str
    allowed: bool
    reason: str = Field(
        description="feature_available, feature_not_available, or why the subscription admits nothing (G9, G10)"
    )
    message: str
    plan: str | None = Field(description="The plan the answer was read from")
    seats: int | None = Field(description="Host seats of that plan (S2); null: unlimited")
    features: list[str] = Field(description="Every feature of that plan")


@router.get(
    "/entitlements/{feature}",
    response_model=EntitlementOut,
    summary="May this tenant use this feature of its plan? (S2, L5)",
)
def entitlement(tenant_id: str, feature: FeatureName, fb: FB, caller: Caller):
    return service.check(fb, caller, tenant_id, feature).as_dict()
