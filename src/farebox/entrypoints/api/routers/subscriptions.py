from dataclasses import asdict

from fastapi import APIRouter, Query

from farebox.entrypoints.api.deps import FB, Caller, IdempotencyKey, idempotent
from farebox.entrypoints.api.lifecycle_schemas import (
    ChangePlanIn,
    SalesRequestIn,
    SalesRequestOut,
    TransitionOut,
    TrialIn,
)
from farebox.entrypoints.api.schemas import SubscribeIn, SubscriptionOut
from farebox.kernel import reasons
from farebox.kernel.reasons import DomainError
from farebox.subscriptions.domain.cards import Cards
from farebox.subscriptions.services import subscriptions as service
from farebox.subscriptions.services.subscriptions import ChangePreview, PlanChange

router = APIRouter(prefix="/v1/tenants/{tenant_id}/subscription", tags=["subscriptions"])


def _change_out(change: PlanChange) -> dict:
    return {
        "subscription": SubscriptionOut.of(change.subscription),
        "upcoming": SubscriptionOut.of(change.upcoming) if change.upcoming else None,
        "immediate": change.immediate,
        "upgrade": change.upgrade,
    }


@router.get("", response_model=SubscriptionOut, summary="The tenant's current subscription (owner, admin)")
def current(tenant_id: str, fb: FB, caller: Caller):
    subscription = service.current(fb, caller, tenant_id)
    if subscription is None:
        raise DomainError(reasons.NOT_FOUND, what="Subscription")
    return SubscriptionOut.of(subscription)


@router.post(
    "", response_model=SubscriptionOut, status_code=201, summary="Subscribe to a plan (owner, admin, operator)"
)
def subscribe(tenant_id: str, body: SubscribeIn, fb: FB, caller: Caller, key: IdempotencyKey = None):
    return idempotent(
        fb,
        caller,
        key,
        {"tenant": tenant_id, **body.model_dump()},
        lambda: SubscriptionOut.of(
            service.subscribe(fb, caller, tenant_id, catalog=body.catalog, plan=body.plan, trial=body.trial)
        ),
        status_code=201,
    )


@router.post(
    "/trial",
    response_model=SubscriptionOut,
    status_code=201,
    summary="Start the plan's free trial, once per tenant (A3, A4)",
)
def start_trial(tenant_id: str, body: TrialIn, fb: FB, caller: Caller, key: IdempotencyKey = None):
    return idempotent(
        fb,
        caller,
        key,
        {"tenant": tenant_id, "trial": True, **body.model_dump()},
        lambda: SubscriptionOut.of(
            service.subscribe(fb, caller, tenant_id, catalog=body.catalog, plan=body.plan, trial=True)
        ),
        status_code=201,
    )


@router.post("/change", summary="Change plan now, at period end or on a date (G7, L9, L11)")
def change_plan(tenant_id: str, body: ChangePlanIn, fb: FB, caller: Caller, key: IdempotencyKey = None):
    return idempotent(
        fb,
        caller,
        key,
        {"tenant": tenant_id, "change": body.model_dump(mode="json")},
        lambda: _change_out(
            service.change_plan(fb, caller, tenant_id, plan=body.plan, catalog=body.catalog, when=body.when)
        ),
    )


@router.get(
    "/preview",
    response_model=ChangePreview,
    summary="What a move to a plan (maybe of another catalog) would change (L11)",
)
def preview_change(
    tenant_id: str,
    fb: FB,
    caller: Caller,
    catalog: str = Query(min_length=1, max_length=64),
    plan: str = Query(min_length=1, max_length=64),
):
    return service.preview_change(fb, caller, tenant_id, catalog=catalog, plan=plan)


@router.get("/upcoming", response_model=SubscriptionOut, summary="The scheduled plan change (G7)")
def upcoming(tenant_id: str, fb: FB, caller: Caller):
    found = service.upcoming(fb, caller, tenant_id)
    if found is None:
        raise DomainError(reasons.NO_SCHEDULED_CHANGE)
    return SubscriptionOut.of(found)


@router.post(
    "/upcoming/cancel",
    response_model=SubscriptionOut,
    summary="Cancel the scheduled plan change before it starts (G7, L9)",
)
def cancel_scheduled_change(tenant_id: str, fb: FB, caller: Caller, key: IdempotencyKey = None):
    return idempotent(
        fb, caller, key, {"tenant": tenant_id, "cancel": "upcoming"},
        lambda: SubscriptionOut.of(service.cancel_scheduled_change(fb, caller, tenant_id)),
    )


@router.post("/cancel", response_model=SubscriptionOut, summary="Cancel at the end of the paid period (G8)")
def cancel(tenant_id: str, fb: FB, caller: Caller, key: IdempotencyKey = None):
    return idempotent(
        fb,
        caller,
        key,
        {"tenant": tenant_id, "cancel": "subscription"},
        lambda: SubscriptionOut.of(service.cancel(fb, caller, tenant_id)),
    )


@router.post("/reactivate", response_model=SubscriptionOut, summary="Undo a cancellation before it takes effect (G8)")
def reactivate(tenant_id: str, fb: FB, caller: Caller, key: IdempotencyKey = None):
    return idempotent(
        fb,
        caller,
        key,
        {"tenant": tenant_id, "reactivate": True},
        lambda: SubscriptionOut.of(service.reactivate(fb, caller, tenant_id)),
    )


@router.get("/cards", response_model=Cards, summary="The subscription card and the upcoming card (G11)")
def cards(tenant_id: str, fb: FB, caller: Caller):
    return service.cards(fb, caller, tenant_id)


@router.post(
    "/sales-requests",
    response_model=SalesRequestOut,
    status_code=201,
    summary="Contact sales / Book a demo (S1, A5): 'Request received'",
)
def request_sales_contact(tenant_id: str, body: SalesRequestIn, fb: FB, caller: Caller, key: IdempotencyKey = None):
    return idempotent(
        fb,
        caller,
        key,
        {"tenant": tenant_id, "sales": body.model_dump()},
        lambda: SalesRequestOut(
            **asdict(service.request_sales_contact(fb, caller, tenant_id, plan=body.plan, catalog=body.catalog))
        ),
        status_code=201,
    )


@router.get("/transitions", response_model=list[TransitionOut], summary="Every state change with its cause (G3)")
def transitions(tenant_id: str, fb: FB, caller: Caller):
    return [TransitionOut(**asdict(t)) for t in service.transitions(fb, caller, tenant_id)]
