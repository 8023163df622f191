from fastapi import APIRouter
from fastapi.responses import Response

from farebox.entrypoints.api.deps import FB, Caller
from farebox.records.services import export

router = APIRouter(tags=["export"])


@router.get(
    "/v1/tenants/{tenant_id}/export",
    summary="The tenant's records as JSON Lines and CSV in a zip (operator, owners, admins)",
    response_class=Response,
    responses={
        200: {
            "content": {"application/zip": {}},
            "description": "A zip of one .jsonl and one .csv per table, and manifest.json",
        }
    },
)
def export_tenant(tenant_id: str, fb: FB, caller: Caller) -> Response:
    data = export.export_zip(fb, caller, tenant_id)
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="farebox-export-{tenant_id}.zip"'},
    )
