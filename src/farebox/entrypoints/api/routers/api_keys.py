"""API keys: list, revoke, rotate; tenant keys under the tenant, operator keys at /v1/api-keys.

Issuing a tenant key is `POST /v1/tenants/{tenant_id}/api-keys` (routers/tenants.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel, Field

from farebox.entrypoints.api.deps import FB, Caller
from farebox.entrypoints.api.schemas import ApiKeyOut, Body, JsonInt
from farebox.kernel.access import Role
from farebox.tenants.services import tenants as service

router = APIRouter(tags=["api keys"])


class ApiKeyInfo(BaseModel):
    """A key as listed: never its secret."""

    key_id: str
    tenant_id: str | None
    role: Role
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    active: bool = Field(description="Neither revoked nor expired: accepted now")

    @classmethod
    def of(cls, key: service.ApiKey) -> ApiKeyInfo:
        return cls.model_validate(key, from_attributes=True)


class OperatorKeyIn(Body):
    name: str = Field(default="", max_length=200)
    expires_at: AwareDatetime | None = Field(default=None, description="Refused from this instant on; in the future")


class RotateIn(Body):
    grace_seconds: JsonInt = Field(
        default=0,
        ge=0,
        le=7 * 24 * 3600,
        description="How long the old key keeps working beside the new one (0: it stops now)",
    )


def _issued(issued: service.IssuedKey) -> ApiKeyOut:
    return ApiKeyOut(
        key_id=issued.key_id,
        secret=issued.secret,
        role=issued.role,
        tenant_id=issued.tenant_id,
        expires_at=issued.expires_at,
    )


@router.get(
    "/v1/tenants/{tenant_id}/api-keys", response_model=list[ApiKeyInfo], summary="The tenant's API keys (owner, admin)"
)
def list_tenant_keys(tenant_id: str, fb: FB, caller: Caller):
    return [ApiKeyInfo.of(k) for k in service.list_api_keys(fb, caller, tenant_id=tenant_id)]


@router.post("/v1/tenants/{tenant_id}/api-keys/{key_id}/revoke", response_model=ApiKeyInfo,
             summary="Revoke a tenant API key at once, with the portal sessions opened with it (owner, admin)")
def revoke_tenant_key(tenant_id: str, key_id: str, fb: FB, caller: Caller):
    return ApiKeyInfo.of(service.revoke_api_key(fb, caller, key_id, tenant_id=tenant_id))


@router.post("/v1/tenants/{tenant_id}/api-keys/{key_id}/rotate", response_model=ApiKeyOut, status_code=201,
             summary="A new key in place of this one; the old one stops now or after a grace (owner, admin)")
def rotate_tenant_key(tenant_id: str, key_id: str, body: RotateIn, fb: FB, caller: Caller):
    return _issued(
        service.rotate_api_key(fb, caller, key_id, tenant_id=tenant_id, grace=timedelta(seconds=body.grace_seconds))
    )


@router.get("/v1/api-keys", response_model=list[ApiKeyInfo], summary="Operator API keys (operator)")
def list_operator_keys(fb: FB, caller: Caller):
    return [ApiKeyInfo.of(k) for k in service.list_api_keys(fb, caller, tenant_id=None)]


@router.post("/v1/api-keys", response_model=ApiKeyOut, status_code=201, summary="Issue an operator API key (operator)")
def issue_operator_key(body: OperatorKeyIn, fb: FB, caller: Caller):
    return _issued(
        service.issue_api_key(
            fb, caller, tenant_id=None, role=Role.OPERATOR, name=body.name, expires_at=body.expires_at
        )
    )


@router.post(
    "/v1/api-keys/{key_id}/revoke", response_model=ApiKeyInfo, summary="Revoke an operator API key at once (operator)"
)
def revoke_operator_key(key_id: str, fb: FB, caller: Caller):
    return ApiKeyInfo.of(service.revoke_api_key(fb, caller, key_id, tenant_id=None))


@router.post(
    "/v1/api-keys/{key_id}/rotate",
    response_model=ApiKeyOut,
    status_code=201,
    summary="Rotate an operator API key (operator)",
)
def rotate_operator_key(key_id: str, body: RotateIn, fb: FB, caller: Caller):
    return _issued(
        service.rotate_api_key(fb, caller, key_id, tenant_id=None, grace=timedelta(seconds=body.grace_seconds))
    )
