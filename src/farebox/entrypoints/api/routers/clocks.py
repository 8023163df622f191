from fastapi import APIRouter

from farebox.clocks import service
from farebox.entrypoints.api.deps import FB, Caller
from farebox.entrypoints.api.schemas import AdvanceIn, AdvanceOut, AttachIn, ClockIn, ClockOut, ProcessedOut
from farebox.kernel.periods import parse_duration

router = APIRouter(prefix="/v1/test-clocks", tags=["test clocks"])


@router.post("", response_model=ClockOut, status_code=201, summary="Create a test clock (operator)")
def create_clock(body: ClockIn, fb: FB, caller: Caller):
    return service.create(fb, caller, name=body.name, start=body.start)


@router.get("", response_model=list[ClockOut], summary="Test clocks (operator)")
def list_clocks(fb: FB, caller: Caller):
    return service.list_all(fb, caller)


@router.get("/{clock_id}", response_model=ClockOut, summary="One test clock with its tenants")
def get_clock(clock_id: str, fb: FB, caller: Caller):
    return service.get(fb, caller, clock_id)


@router.post("/{clock_id}/tenants", response_model=ClockOut, summary="Attach a tenant to the test clock")
def attach(clock_id: str, body: AttachIn, fb: FB, caller: Caller):
    service.attach(fb, caller, clock_id, body.tenant_id)
    return service.get(fb, caller, clock_id)


@router.post("/{clock_id}/advance", response_model=AdvanceOut, summary="Advance; what falls due runs in order (G2)")
def advance(clock_id: str, body: AdvanceIn, fb: FB, caller: Caller):
    by = parse_duration(body.by) if body.by else None
    report = service.advance(fb, caller, clock_id, to=body.to, by=by)
    return AdvanceOut(
        clock_id=report.clock_id,
        from_at=report.from_at,
        to_at=report.to_at,
        processed=[ProcessedOut(**vars(p)) for p in report.processed],
    )
