"""Payments and dunning (G9, A7): charge an issued invoice, retry on a schedule during grace.

* An invoice issued with something to pay is charged at once on the
  tenant's default payment method (`collect`, right after `invoice.issued`), with the
  idempotency key ``<invoice>:attempt:<n>``: a transaction retried after a
  crash asks the provider again with the same key and gets the same answer.
* A failed first attempt publishes `invoice.payment_failed` (`renewal` true
  for a renewal invoice); the lifecycle turns it into *Payment issue* with a
  grace period.  Retries are due items at 1, 3 and 5 days (those that fall
  inside the plan's grace); a new payment method retries open invoices at once.
* A successful attempt marks the invoice paid and publishes `invoice.paid`.
* A charge the provider did not answer (timeout, connection reset) is recorded
  `pending` without a provider reference and asked again 10 minutes later with
  the *same* idempotency key, so a charge the provider did make is not made twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from farebox.adapters.db.ids import new_id
from farebox.adapters.db.repos import invoicing as invoices_repo
from farebox.adapters.db.repos import payments as repo
from farebox.adapters.db.uow import UnitOfWork
from farebox.adapters.payments.base import ChargeResult, PaymentError, PaymentProvider
from farebox.bootstrap import Farebox
from farebox.domain import reasons
from farebox.domain.access import Principal, require_billing_access
from farebox.domain.money import Money
from farebox.domain.reasons import DomainError
from farebox.services import audit, due, signals
from farebox.services.clocks import now_for
from farebox.services.signals import Signal

RETRY = "payment.retry"
RETRY_AFTER_DAYS = (1, 3, 5)
UNANSWERED_RETRY = timedelta(minutes=10)  # the provider did not answer: the same charge is asked again
DEFAULT_GRACE_DAYS = 7

def provider(via: Farebox | UnitOfWork) -> PaymentProvider:
    """The payment provider `bootstrap` wired (FAREBOX_PAYMENT_PROVIDER: sandbox or stripe)."""
    return via.ports.payment_provider


@dataclass(frozen=True)
class PaymentMethod:
    id: str
    provider: str
    brand: str
    last4: str
    is_default: bool
    created_at: datetime


@dataclass(frozen=True)
class PaymentAttempt:
    id: str
    invoice_id: str
    attempt: int
    status: str
    amount: Money
    failure_code: str | None
    failure_message: str | None
    created_at: datetime


def _method(row: dict[str, Any]) -> PaymentMethod:
    return PaymentMethod(row["id"], row["provider"], row["brand"], row["last4"], row["is_default"], row["created_at"])


def _attempt(row: dict[str, Any]) -> PaymentAttempt:
    return PaymentAttempt(row["id"], row["invoice_id"], row["attempt"], row["status"], Money(row["amount_minor"], row["currency"]), row["failure_code"], row["failure_message"], row["created_at"])


def _customer(uow: UnitOfWork, tenant_id: str, now: datetime) -> str:
    return _customers(uow, {tenant_id: now})[tenant_id]


def _customers(uow: UnitOfWork, now_by_tenant: Mapping[str, datetime]) -> dict[str, str]:
    """The provider's customer of each tenant, created (at the tenant's `now`) where missing."""
    p = provider(uow)
    refs = repo.customer_refs(uow.conn, now_by_tenant, p.name)
    missing = [t for t in now_by_tenant if t not in refs]
    if missing:
        rows = []
        parties = invoices_repo.billing_parties(uow.conn, missing)
        for tenant_id in missing:
            tenant = parties.get(tenant_id) or {}
            refs[tenant_id] = p.create_customer(tenant_id=tenant_id, email=tenant.get("billing_email"), name=tenant.get("name", tenant_id))
            rows.append({"tenant_id": tenant_id, "provider": p.name, "customer_ref": refs[tenant_id], "created_at": now_by_tenant[tenant_id]})
        repo.insert_customers(uow.conn, rows)
    return refs


# -- use cases --------------------------------------------------------------------


def add_payment_method(fb: Farebox, actor: Principal, tenant_id: str, *, token: str) -> PaymentMethod:
    """Attach a card (a provider token; sandbox: a test card number) as the default,
    then retry the tenant's open invoices with it (G9: a new method settles)."""
    require_billing_access(actor, tenant_id)
    p = provider(fb)
    with fb.uow() as uow:
        now = now_for(uow, fb.clock, tenant_id)
        customer = _customer(uow, tenant_id, now)
        try:
            card = p.attach_payment_method(customer_ref=customer, token=token)
        except PaymentError as exc:
            raise DomainError(reasons.PAYMENT_METHOD_REFUSED, detail=exc.message, details={"provider_code": exc.code}) from None
        row = {"tenant_id": tenant_id, "id": new_id("pm"), "provider": p.name, "provider_ref": card.ref, "brand": card.brand, "last4": card.last4, "is_default": True, "created_at": now}
        repo.insert_method(uow.conn, **row)
        audit.publish(
            uow, "payment_method.added", tenant_id=tenant_id, at=now, actor=actor, subject=row["id"],
            after={"brand": card.brand, "last4": card.last4, "provider": p.name, "is_default": True},
        )
        for invoice in invoices_repo.list_for_tenant(uow.conn, tenant_id, status="open"):
            charge_invoice(uow, invoice, now=now, cause=f"new payment method by {actor.label()}")
        uow.commit()
    return _method(row)


def list_payment_methods(fb: Farebox, actor: Principal, tenant_id: str) -> list[PaymentMethod]:
    require_billing_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        return [_method(r) for r in repo.methods(uow.conn, tenant_id)]


def pay_invoice(fb: Farebox, actor: Principal, tenant_id: str, invoice_id: str) -> PaymentAttempt:
    """Charge an open invoice now on the default payment method."""
    require_billing_access(actor, tenant_id)
    with fb.uow() as uow:
        now = now_for(uow, fb.clock, tenant_id)
        invoice = invoices_repo.get(uow.conn, tenant_id, invoice_id, for_update=True)
        if invoice is None:
            raise DomainError(reasons.NOT_FOUND, what="Invoice")
        if invoice["status"] != "open":
            raise DomainError(reasons.INVOICE_NOT_OPEN, status=invoice["status"], action="paid")
        attempt = charge_invoice(uow, invoice, now=now, cause=f"pay by {actor.label()}")
        uow.commit()
    return _attempt(attempt)


def attempts(fb: Farebox, actor: Principal, tenant_id: str, invoice_id: str) -> list[PaymentAttempt]:
    require_billing_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        return [_attempt(r) for r in repo.attempts(uow.conn, tenant_id, invoice_id)]


def hosted_link(fb: Farebox, actor: Principal, tenant_id: str, *, kind: str, return_url: str) -> str:
    """A hosted checkout (`kind="checkout"`) or billing portal (`"portal"`) link of the provider."""
    require_billing_access(actor, tenant_id)
    p = provider(fb)
    with fb.uow() as uow:
        customer = _customer(uow, tenant_id, now_for(uow, fb.clock, tenant_id))
        uow.commit()
    if kind == "checkout":
        return p.checkout_link(customer_ref=customer, success_url=return_url, cancel_url=return_url)
    return p.portal_link(customer_ref=customer, return_url=return_url)


# -- charging -------------------------------------------------------------------------


def charge_invoice(uow: UnitOfWork, invoice: dict[str, Any], *, now: datetime, cause: str) -> dict[str, Any]:
    """One payment attempt on an open invoice, in the caller's transaction."""
    tenant_id, invoice_id = invoice["tenant_id"], invoice["id"]
    previous = repo.attempts(uow.conn, tenant_id, invoice_id)
    unanswered = previous[-1] if previous and previous[-1]["status"] == "pending" and previous[-1]["provider_ref"] is None else None
    # The provider never answered the last attempt (G4): ask again with the same number, so the
    # same idempotency key, and a charge it did make is returned, not made twice.
    number = unanswered["attempt"] if unanswered is not None else len(previous) + 1
    method = repo.default_method(uow.conn, tenant_id)
    customer = _customer(uow, tenant_id, now) if method is not None else None
    row, result = _charge(invoice, number, method, customer, now=now, cause=cause, provider_of_charge=provider(uow))
    if unanswered is not None:
        row["id"] = unanswered["id"]
        repo.update_attempt(uow.conn, tenant_id, row["id"], **{k: v for k, v in row.items() if k not in ("tenant_id", "id", "created_at")})
    else:
        repo.insert_attempt(uow.conn, **row)
    _after_charge(uow, invoice, number, result, now)
    return row


def _after_charge(uow: UnitOfWork, invoice: dict[str, Any], number: int, result: ChargeResult, now: datetime) -> None:
    """What an attempt's outcome does to its invoice (`collect_all` batches the succeeded ones itself)."""
    if result.succeeded:
        _mark_paid(uow, invoice, now)
    elif result.status == "failed":
        _after_failure(uow, invoice, number, result, now)
    elif result.ref is None:  # no answer: ask again soon with the same key
        due.schedule(uow, tenant_id=invoice["tenant_id"], kind=RETRY, ref=invoice["id"], due_at=now + UNANSWERED_RETRY, now=now, payload={"resend": number})


def _charge(
    invoice: dict[str, Any], number: int, method: dict[str, Any] | None, customer: str | None, *,
    now: datetime, cause: str, provider_of_charge: PaymentProvider,
) -> tuple[dict[str, Any], ChargeResult]:
    """Ask the provider to charge an invoice (attempt `number`, idempotency key `<invoice>:attempt:<n>`); the attempt row to store."""
    tenant_id, invoice_id = invoice["tenant_id"], invoice["id"]
    key = f"{invoice_id}:attempt:{number}"
    p = provider_of_charge
    amount = Money(invoice["amount_due_minor"], invoice["currency"])  # the total less the credit applied
    if amount.amount_minor == 0:  # the credit balance covers it: paid without asking the provider
        result = ChargeResult("succeeded", None, details={"covered_by_credit": True})
    elif method is None or customer is None:
        result = ChargeResult("failed", None, "no_payment_method", "No payment method on file.")
    else:
        result = p.charge(customer_ref=customer, payment_method_ref=method["provider_ref"], amount=amount, idempotency_key=key,
                          description=f"Invoice {invoice['number']}", metadata={"tenant_id": tenant_id, "invoice_id": invoice_id})
    row = {
        "tenant_id": tenant_id, "id": new_id("pay"), "invoice_id": invoice_id, "attempt": number, "idempotency_key": key,
        "provider": p.name, "provider_ref": result.ref, "payment_method_id": method["id"] if method else None,
        "amount_minor": amount.amount_minor, "currency": amount.currency, "status": result.status,
        "failure_code": result.failure_code, "failure_message": result.failure_message, "details": {"cause": cause, **result.details}, "created_at": now,
    }
    return row, result


def _mark_paid(uow: UnitOfWork, invoice: dict[str, Any], now: datetime) -> None:
    _mark_all_paid(uow, [(invoice, now)])


def _mark_all_paid(uow: UnitOfWork, paid: Sequence[tuple[dict[str, Any], datetime]]) -> None:
    """Invoices paid (each at its `now`): status, pending retries cancelled, `invoice.paid` published."""
    if not paid:
        return
    invoices_repo.mark_paid(uow.conn, [(invoice["tenant_id"], invoice["id"], now) for invoice, now in paid])
    due.cancel_all(uow, kind=RETRY, refs=[(invoice["tenant_id"], invoice["id"], now) for invoice, now in paid])
    signals.publish_all(uow, [Signal("invoice.paid", invoice["tenant_id"], now, "system", invoice["id"], {"subscription_id": invoice["subscription_id"]}) for invoice, now in paid])


def _after_failure(uow: UnitOfWork, invoice: dict[str, Any], number: int, result: ChargeResult, now: datetime) -> None:
    if number == 1:
        data = {"subscription_id": invoice["subscription_id"], "renewal": invoice["kind"] == "renewal", "reason": result.failure_code or "failed"}
        signals.publish(uow, Signal("invoice.payment_failed", invoice["tenant_id"], now, "system", invoice["id"], data))
        first_failed_at = now
    else:
        first = next((a for a in repo.attempts(uow.conn, invoice["tenant_id"], invoice["id"]) if a["status"] == "failed"), None)
        first_failed_at = first["created_at"] if first else now
    grace = timedelta(days=_grace_days(uow, invoice))
    for days in RETRY_AFTER_DAYS:
        at = first_failed_at + timedelta(days=days)
        if at > now and at < first_failed_at + grace:
            due.schedule(uow, tenant_id=invoice["tenant_id"], kind=RETRY, ref=invoice["id"], due_at=at, now=now, payload={"retry": days})
            return


def _grace_days(uow: UnitOfWork, invoice: dict[str, Any]) -> int:
    from farebox.adapters.db.repos import subscriptions as subscriptions_repo

    subscription = subscriptions_repo.get(uow.conn, invoice["tenant_id"], invoice["subscription_id"])
    return subscription.plan.grace_days if subscription is not None else DEFAULT_GRACE_DAYS


def settle_from_provider(uow: UnitOfWork, *, provider_name: str, provider_ref: str, succeeded: bool, failure_code: str | None, now: datetime) -> bool:
    """A provider's asynchronous outcome of a charge (e.g. a Stripe webhook); True if it matched an attempt."""
    attempt = repo.attempt_by_ref(uow.conn, provider_name, provider_ref)
    if attempt is None:
        return False
    invoice = invoices_repo.get(uow.conn, attempt["tenant_id"], attempt["invoice_id"], for_update=True)
    if invoice is None:
        return False
    status = "succeeded" if succeeded else "failed"
    if attempt["status"] != status:
        repo.update_attempt(uow.conn, attempt["tenant_id"], attempt["id"], status=status, failure_code=failure_code)
        if succeeded and invoice["status"] == "open":
            _mark_paid(uow, invoice, now)
        elif not succeeded and invoice["status"] == "open":
            _after_failure(uow, invoice, attempt["attempt"], ChargeResult("failed", provider_ref, failure_code), now)
    return True


def collect(uow: UnitOfWork, tenant_id: str, invoice_id: str, now: datetime) -> None:
    """Charge a just-issued invoice at once, after every `invoice.issued` listener ran
    (G13: fees in advance are collected when billed)."""
    invoice = invoices_repo.get(uow.conn, tenant_id, invoice_id)
    if invoice is not None and invoice["status"] == "open":
        charge_invoice(uow, invoice, now=now, cause="invoice issued")


def collect_all(uow: UnitOfWork, issued: Sequence[tuple[str, str, datetime]], *, cause: str = "invoice issued") -> None:
    """`collect` for many just-issued `(tenant_id, invoice_id, now)` at once (the billing run):
    the same attempts, idempotency keys, provider calls, states and signals, with each
    query and write done once for all of them."""
    now_of = {(t, i): now for t, i, now in issued}
    found = invoices_repo.open_among(uow.conn, list(now_of))
    open_ = [found[pair] for pair in now_of if pair in found]
    if not open_:
        return
    counts = repo.attempt_counts(uow.conn, [(inv["tenant_id"], inv["id"]) for inv in open_])
    methods = repo.default_methods(uow.conn, {inv["tenant_id"] for inv in open_})
    customers = _customers(uow, {inv["tenant_id"]: now_of[(inv["tenant_id"], inv["id"])] for inv in open_ if inv["tenant_id"] in methods})
    rows, paid, others = [], [], []
    for invoice in open_:
        tenant_id, now = invoice["tenant_id"], now_of[(invoice["tenant_id"], invoice["id"])]
        number = counts[(tenant_id, invoice["id"])] + 1
        row, result = _charge(
            invoice, number, methods.get(tenant_id), customers.get(tenant_id), now=now, cause=cause,
            provider_of_charge=provider(uow),
        )
        rows.append(row)
        if result.succeeded:
            paid.append((invoice, now))
        else:
            others.append((invoice, number, result, now))
    repo.insert_attempts(uow.conn, rows)
    _mark_all_paid(uow, paid)
    for invoice, number, result, now in others:  # declines are few: one by one (G9's grace and its signals)
        _after_charge(uow, invoice, number, result, now)


@due.handler(RETRY)
def _retry(uow: UnitOfWork, item: dict[str, Any], now: datetime) -> str:
    """Dunning (G9): retry an unpaid invoice during grace."""
    invoice = invoices_repo.get(uow.conn, item["tenant_id"], item["ref"], for_update=True)
    if invoice is None or invoice["status"] != "open":
        return "nothing to do: invoice not open"
    cause = f"resend after no answer (attempt {item['payload']['resend']})" if "resend" in item["payload"] else f"dunning retry after {item['payload'].get('retry')} day(s)"
    row = charge_invoice(uow, invoice, now=now, cause=cause)
    return f"retry {row['attempt']}: {row['status']}"


# -- provider webhooks ------------------------------------------------------------------


def handle_webhook(fb: Farebox, provider_name: str, payload: bytes, signature: str | None) -> str:
    """A provider's event, verified by its signature (Stripe: `Stripe-Signature`).

    `payment_intent.succeeded` / `payment_intent.payment_failed` settle or fail
    the matching attempt (asynchronous outcomes); `payment_method.attached`
    (e.g. after a hosted checkout) records the card and retries open invoices.
    Returns what was done; unknown events are acknowledged and ignored.
    """
    p = provider(fb)
    parse = getattr(p, "parse_webhook", None)
    if p.name != provider_name or parse is None:
        raise DomainError(reasons.NOT_FOUND, what="Webhook endpoint")
    try:
        event = parse(payload, signature)
    except ValueError:
        raise DomainError(reasons.PROVIDER_SIGNATURE_INVALID) from None
    kind, obj = event["type"], event["data"]["object"]
    with fb.uow() as uow:
        if kind in ("payment_intent.succeeded", "payment_intent.payment_failed"):
            attempt = repo.attempt_by_ref(uow.conn, p.name, obj["id"])
            if attempt is None:
                return f"ignored {kind}: unknown payment {obj['id']}"
            now = now_for(uow, fb.clock, attempt["tenant_id"])
            error = obj.get("last_payment_error") or {}
            settle_from_provider(uow, provider_name=p.name, provider_ref=obj["id"], succeeded=kind.endswith("succeeded"), failure_code=error.get("code"), now=now)
            outcome = f"{kind}: invoice {attempt['invoice_id']}"
        elif kind == "payment_method.attached":
            tenant_id = repo.tenant_for_customer(uow.conn, p.name, str(obj.get("customer")))
            if tenant_id is None:
                return f"ignored {kind}: unknown customer"
            now = now_for(uow, fb.clock, tenant_id)
            if repo.method_by_ref(uow.conn, tenant_id, obj["id"]) is None:
                card = obj.get("card") or {}
                repo.insert_method(uow.conn, tenant_id=tenant_id, id=new_id("pm"), provider=p.name, provider_ref=obj["id"], brand=str(card.get("brand", "card")),
                                   last4=str(card.get("last4", "????")), is_default=True, created_at=now)
                for invoice in invoices_repo.list_for_tenant(uow.conn, tenant_id, status="open"):
                    charge_invoice(uow, invoice, now=now, cause=f"{kind} webhook")
            outcome = f"{kind}: tenant {tenant_id}"
        else:
            return f"ignored {kind}"
        uow.commit()
    return outcome
