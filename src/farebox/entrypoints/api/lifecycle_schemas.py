"""Request and response bodies of the subscription lifecycle endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field

from farebox.entrypoints.api.schemas import Body, instant_text

AwareInstant = Annotated[AwareDatetime, BeforeValidator(instant_text)]  # ISO text, never a bare number


class TrialIn(Body):
    catalog: str = Field(min_length=1, max_length=64)
    plan: str = Field(min_length=1, max_length=64)


class ChangePlanIn(Body):
    plan: str = Field(min_length=1, max_length=64)
    catalog: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Another catalog's plan (L11); default: the current catalog",
    )
    when: Literal["immediately", "end_of_period"] | AwareInstant | None = Field(
        default=None,
        description="G7: `immediately`, `end_of_period` or a date; default: upgrades now, downgrades at period end",
    )


class SalesRequestIn(Body):
    plan: str = Field(min_length=1, max_length=64)
    catalog: str | None = Field(default=None, min_length=1, max_length=64)


class TransitionOut(BaseModel):
    subscription_id: str
    from_status: str | None
    to_status: str
    at: datetime
    cause: str
    details: dict[str, Any]


class SalesRequestOut(BaseModel):
    id: str
    tenant_id: str
    catalog: str
    plan: str
    kind: str
    requested_at: datetime
    message: str
