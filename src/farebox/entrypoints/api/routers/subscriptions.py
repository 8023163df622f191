from fastapi import APIRouter

from farebox.domain import reasons
from farebox.domain.reasons import DomainError
from farebox.entrypoints.api.deps import FB, Caller, IdempotencyKey, idempotent
from farebox.entrypoints.api.schemas import SubscribeIn, SubscriptionOut
from farebox.services import subscriptions as service

router = APIRouter(prefix="/v1/tenants/{tenant_id}/subscription", tags=["subscriptions"])


@router.get("", response_model=SubscriptionOut, summary="The tenant's current subscription (owner, admin)")
def current(tenant_id: str, fb: FB, caller: Caller):
    subscription = service.current(fb, caller, tenant_id)
    if subscription is None:
        raise DomainError(reasons.NOT_FOUND, what="Subscription")
    return SubscriptionOut.of(subscription)


@router.post("", response_model=SubscriptionOut, status_code=201, summary="Subscribe to a plan (owner, admin, operator)")
def subscribe(tenant_id: str, body: SubscribeIn, fb: FB, caller: Caller, key: IdempotencyKey = None):
    return idempotent(
        fb, caller, key, {"tenant": tenant_id, **body.model_dump()},
        lambda: SubscriptionOut.of(service.subscribe(fb, caller, tenant_id, catalog=body.catalog, plan=body.plan)),
        status_code=201,
    )
