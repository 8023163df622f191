from fastapi import APIRouter, Query

from farebox.entrypoints.api.deps import FB, Caller
from farebox.entrypoints.api.schemas import AuditEntryOut
from farebox.records.services import audit

router = APIRouter(tags=["audit"])


@router.get(
    "/v1/audit",
    response_model=list[AuditEntryOut],
    summary="The audit log of every tenant and of operator-wide changes (operator)",
)
def operator_audit(
    fb: FB,
    caller: Caller,
    limit: int = Query(default=100, ge=1, le=1000),
    kind: str | None = Query(
        default=None, max_length=64, description="Only kinds starting with this, e.g. `subscription.`"
    ),
):
    return audit.entries(fb, caller, limit=limit, kind_prefix=kind)


@router.get(
    "/v1/tenants/{tenant_id}/audit",
    response_model=list[AuditEntryOut],
    summary="A tenant's audit log (operator, owners, admins)",
)
def tenant_audit(
    tenant_id: str,
    fb: FB,
    caller: Caller,
    limit: int = Query(default=100, ge=1, le=1000),
    kind: str | None = Query(default=None, max_length=64),
):
    return audit.entries(fb, caller, tenant_id=tenant_id, limit=limit, kind_prefix=kind)
