from fastapi import APIRouter

from farebox.catalog import service
from farebox.entrypoints.api.deps import FB, Caller, IdempotencyKey, idempotent
from farebox.entrypoints.api.schemas import CatalogLoadIn, CatalogLoadOut, CatalogOut

router = APIRouter(prefix="/v1/catalogs", tags=["catalogs"])


@router.get("", response_model=list[CatalogOut], summary="Catalogs and their current plan versions")
def list_catalogs(fb: FB, caller: Caller) -> list[dict]:
    return service.list_catalogs(fb)


@router.post("", response_model=CatalogLoadOut, summary="Load or reload a catalog (operator)")
def load_catalog(body: CatalogLoadIn, fb: FB, caller: Caller, key: IdempotencyKey = None):
    bundled, document = body.bundled, body.document  # exactly one is set (CatalogLoadIn)
    if bundled is not None:
        return idempotent(fb, caller, key, body, lambda: service.load_bundled(fb, caller, bundled).__dict__)
    assert document is not None
    return idempotent(fb, caller, key, body, lambda: service.load_document(fb, caller, document).__dict__)
