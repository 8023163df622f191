from fastapi import APIRouter, Query

from farebox.entrypoints.api.deps import FB, Caller, IdempotencyKey, idempotent
from farebox.entrypoints.api.schemas import ApiKeyIn, ApiKeyOut, MemberIn, MemberOut, TenantIn, TenantOut
from farebox.kernel.access import Role
from farebox.tenants.services import tenants as service

router = APIRouter(prefix="/v1/tenants", tags=["tenants"])


@router.post("", response_model=TenantOut, status_code=201, summary="Create a tenant with its owner (operator)")
def create_tenant(body: TenantIn, fb: FB, caller: Caller, key: IdempotencyKey = None):
    return idempotent(
        fb,
        caller,
        key,
        body,
        lambda: service.create_tenant(
            fb, caller, tenant_id=body.id, name=body.name, owner_email=body.owner_email, owner_name=body.owner_name
        ),
        status_code=201,
    )


@router.get("", response_model=list[TenantOut], summary="Tenants (operator)")
def list_tenants(
    fb: FB,
    caller: Caller,
    search: str | None = Query(default=None, max_length=100),
    limit: int = Query(default=100, ge=1, le=1000),
):
    return service.list_tenants(fb, caller, search=search, limit=limit)


@router.get("/{tenant_id}", response_model=TenantOut, summary="One tenant")
def get_tenant(tenant_id: str, fb: FB, caller: Caller):
    return service.get_tenant(fb, caller, tenant_id)


@router.get("/{tenant_id}/members", response_model=list[MemberOut], summary="The tenant's team")
def list_members(tenant_id: str, fb: FB, caller: Caller):
    return service.list_members(fb, caller, tenant_id)


@router.post(
    "/{tenant_id}/members", response_model=MemberOut, status_code=201, summary="Add a team member (owner, admin)"
)
def add_member(tenant_id: str, body: MemberIn, fb: FB, caller: Caller, key: IdempotencyKey = None):
    return idempotent(
        fb, caller, key, {"tenant": tenant_id, **body.model_dump(mode="json")},
        lambda: service.add_member(fb, caller, tenant_id, email=body.email, name=body.name, role=Role(body.role)),
        status_code=201,
    )


@router.post(
    "/{tenant_id}/api-keys", response_model=ApiKeyOut, status_code=201, summary="Issue a tenant API key (owner, admin)"
)
def issue_key(tenant_id: str, body: ApiKeyIn, fb: FB, caller: Caller):
    issued = service.issue_api_key(
        fb, caller, tenant_id=tenant_id, role=Role(body.role), name=body.name, expires_at=body.expires_at
    )
    return ApiKeyOut(
        key_id=issued.key_id,
        secret=issued.secret,
        role=issued.role,
        tenant_id=issued.tenant_id,
        expires_at=issued.expires_at,
    )
