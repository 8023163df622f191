"""Payments and dunning (G9, A7): charge an issued invoice, retry on a schedule during grace.

Charging never happens inside the transaction that issues an invoice, and no
provider call ever runs inside a unit of work (a Stripe call can take 30 s
and more; on SQLite a write transaction holds the one write lock):

1. the transaction that issues the invoice (or retries it, or pays it now)
   also writes the *attempt* as a queued row (`pending`, no provider
   reference) with its idempotency key ``<billing key>:attempt:<n>``, built
   from the invoice's stable billing key, plus a due item that asks again 10
   minutes later: the outbox;
2. once that transaction has committed, the provider is asked
   (`UnitOfWork.after_commit`), outside any transaction;
3. its answer is recorded in a transaction of its own: the attempt's status,
   the invoice paid (`invoice.paid`) or the failure (`invoice.payment_failed`,
   dunning).

So a failure after the provider answered (a listener, the commit, a lost
connection) or a process killed between issuing and charging leaves a queued
attempt that the due item (the worker, or a test clock's advance) sends again
with the *same* key: the provider returns the charge it made, never a second
one.  The same holds for an answer that never came (timeout, reset).

* A failed first attempt publishes `invoice.payment_failed`; the lifecycle
  turns it into *Payment issue* with the plan's grace period, whatever the
  invoice's kind (first invoice, upgrade, renewal).  Retries are due items at
  1, 3 and 5 days (those that fall inside the grace); a new payment method
  retries open invoices at once.
* A tenant invoiced by bank transfer is never charged: its invoices carry a
  due date (`tenants.payment_terms_days`), and an invoice still open then
  opens *Payment issue* with grace from that date.
* Provider webhooks are deduplicated by event id: a replay answers what the
  first delivery answered and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from farebox.bootstrap import Farebox
from farebox.catalog.domain import Plan
from farebox.clocks.service import now_for
from farebox.events import due, signals
from farebox.events.signals import Signal
from farebox.invoicing.db import invoices as invoices_repo
from farebox.kernel import reasons
from farebox.kernel.access import Principal, require_billing_access, require_operator
from farebox.kernel.money import Money
from farebox.kernel.reasons import DomainError
from farebox.payments import db as repo
from farebox.payments.providers.base import CardInfo, ChargeResult, PaymentError, PaymentProvider
from farebox.records.services import audit
from farebox.storage.ids import new_id
from farebox.storage.uow import UnitOfWork
from farebox.tenants.db import tenants as tenants_repo

RETRY = "payment.retry"
RETRY_AFTER_DAYS = (1, 3, 5)
UNANSWERED_RETRY = timedelta(minutes=10)  # the provider did not answer: the same charge is asked again
DEFAULT_GRACE_DAYS = 7
QUEUED = "queued"  # `details.sent` of an attempt written before the provider was asked

log = logging.getLogger(__name__)

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
    return PaymentAttempt(
        row["id"],
        row["invoice_id"],
        row["attempt"],
        row["status"],
        Money(row["amount_minor"], row["currency"]),
        row["failure_code"],
        row["failure_message"],
        row["created_at"],
    )


def _customers(fb: Farebox, tenant_ids: Iterable[str]) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The provider's customer of each tenant, and the rows of those just created at the provider
    (asked outside any transaction; its key `customer:<tenant>` makes a second ask return the first),
    for the caller to store in its own transaction (`repo.insert_customers_if_missing`)."""
    p = provider(fb)
    wanted = sorted(set(tenant_ids))
    with fb.uow(readonly=True) as uow:
        refs = repo.customer_refs(uow.conn, wanted, p.name)
        missing = [t for t in wanted if t not in refs]
        parties = invoices_repo.billing_parties(uow.conn, missing) if missing else {}
        if any(t not in parties for t in missing):
            raise DomainError(reasons.NOT_FOUND, what="Tenant")
        now_of = {t: now_for(uow, fb.clock, t) for t in missing}
    rows = []
    for tenant_id in missing:
        party = parties.get(tenant_id) or {}
        refs[tenant_id] = p.create_customer(
            tenant_id=tenant_id, email=party.get("billing_email"), name=party.get("name", tenant_id)
        )
        rows.append(
            {
                "tenant_id": tenant_id,
                "provider": p.name,
                "customer_ref": refs[tenant_id],
                "created_at": now_of[tenant_id],
            }
        )
    return refs, rows


@dataclass(frozen=True)
class AttachedCard:
    """A card the provider attached, with the customer it was attached to (stored with the card)."""

    card: CardInfo
    customer_rows: tuple[dict[str, Any], ...]


# -- use cases --------------------------------------------------------------------


def add_payment_method(fb: Farebox, actor: Principal, tenant_id: str, *, token: str) -> PaymentMethod:
    """Attach a card (a provider token; sandbox: a test card number) as the default,
    then retry the tenant's open invoices with it (G9: a new method settles)."""
    return record_payment_method(fb, actor, tenant_id, attach_card(fb, actor, tenant_id, token=token))


def attach_card(fb: Farebox, actor: Principal, tenant_id: str, *, token: str) -> AttachedCard:
    """Ask the provider to attach a card to the tenant's customer, outside any transaction
    (the API does this before it opens the Idempotency-Key's transaction); nothing is stored."""
    require_billing_access(actor, tenant_id)
    refs, rows = _customers(fb, [tenant_id])
    try:
        return AttachedCard(provider(fb).attach_payment_method(customer_ref=refs[tenant_id], token=token), tuple(rows))
    except PaymentError as exc:
        raise DomainError(
            reasons.PAYMENT_METHOD_REFUSED, detail=exc.message, details={"provider_code": exc.code}
        ) from None


def record_payment_method(fb: Farebox, actor: Principal, tenant_id: str, attached: AttachedCard) -> PaymentMethod:
    """Record an attached card as the default and queue a charge of every open invoice on it."""
    require_billing_access(actor, tenant_id)
    card = attached.card
    with fb.uow() as uow:
        now = now_for(uow, fb.clock, tenant_id)
        repo.insert_customers_if_missing(uow.conn, attached.customer_rows)
        row = {
            "tenant_id": tenant_id,
            "id": new_id("pm"),
            "provider": provider(fb).name,
            "provider_ref": card.ref,
            "brand": card.brand,
            "last4": card.last4,
            "is_default": True,
            "created_at": now,
        }
        method_id = str(row["id"])
        repo.insert_method(uow.conn, **row)
        audit.publish(
            uow, "payment_method.added", tenant_id=tenant_id, at=now, actor=actor, subject=method_id,
            after={"brand": card.brand, "last4": card.last4, "provider": row["provider"], "is_default": True},
        )
        for invoice in invoices_repo.list_for_tenant(uow.conn, tenant_id, status="open"):
            request_charge(uow, invoice, now=now, cause=f"new payment method by {actor.label()}")
        uow.commit()
    return _method(row)


def list_payment_methods(fb: Farebox, actor: Principal, tenant_id: str) -> list[PaymentMethod]:
    require_billing_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        return [_method(r) for r in repo.methods(uow.conn, tenant_id)]


def pay_invoice(fb: Farebox, actor: Principal, tenant_id: str, invoice_id: str) -> PaymentAttempt:
    """Charge an open invoice now on the default payment method: the attempt is queued and
    committed, the provider asked, the outcome recorded; the attempt as it stands then.
    (Inside an outer unit of work, the API's Idempotency-Key, the provider is asked when that
    one commits, so the answer is the queued attempt: `pending`.)"""
    require_billing_access(actor, tenant_id)
    with fb.uow() as uow:
        now = now_for(uow, fb.clock, tenant_id)
        invoice = invoices_repo.get(uow.conn, tenant_id, invoice_id, for_update=True)
        if invoice is None:
            raise DomainError(reasons.NOT_FOUND, what="Invoice")
        if invoice["status"] != "open":
            raise DomainError(reasons.INVOICE_NOT_OPEN, status=invoice["status"], action="paid")
        attempt = request_charge(uow, invoice, now=now, cause=f"pay by {actor.label()}")
        uow.commit()
    with fb.uow(readonly=True) as uow:
        stored = repo.attempt_by_id(uow.conn, tenant_id, attempt["id"])
    return _attempt(stored or attempt)


def attempts(fb: Farebox, actor: Principal, tenant_id: str, invoice_id: str) -> list[PaymentAttempt]:
    require_billing_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        if invoices_repo.get(uow.conn, tenant_id, invoice_id) is None:  # another tenant's invoice: 404, as elsewhere
            raise DomainError(reasons.NOT_FOUND, what="Invoice")
        return [_attempt(r) for r in repo.attempts(uow.conn, tenant_id, invoice_id)]


def hosted_link(fb: Farebox, actor: Principal, tenant_id: str, *, kind: str, return_url: str) -> str:
    """A hosted checkout (`kind="checkout"`) or billing portal (`"portal"`) link of the provider."""
    require_billing_access(actor, tenant_id)
    p = provider(fb)
    refs, rows = _customers(fb, [tenant_id])
    if rows:
        with fb.uow() as uow:
            repo.insert_customers_if_missing(uow.conn, rows)
            uow.commit()
    customer = refs[tenant_id]
    if kind == "checkout":
        return p.checkout_link(customer_ref=customer, success_url=return_url, cancel_url=return_url)
    return p.portal_link(customer_ref=customer, return_url=return_url)


def require_means_of_payment(uow: UnitOfWork, tenant_id: str, plan: Plan) -> None:
    """A plan that requires a payment method is refused while none is on file (else a paid plan would be
    used without paying), unless an operator set the tenant to be invoiced by bank transfer."""
    if plan.is_free or not plan.requires_payment_method:
        return
    if repo.default_method(uow.conn, tenant_id) is None and not _bank_transfer(uow, tenant_id):
        raise DomainError(reasons.PAYMENT_METHOD_REQUIRED, plan=plan.code)


def set_bank_transfer(fb: Farebox, actor: Principal, tenant_id: str, *, terms_days: int | None) -> int | None:
    """The operator invoices a tenant by bank transfer (`terms_days` after issue, 0-365), or stops
    (`None`: its invoices are charged on its payment method again); audited."""
    require_operator(actor)
    if terms_days is not None and not 0 <= terms_days <= 365:
        raise DomainError(
            reasons.VALIDATION_ERROR, detail="payment terms are 0 to 365 days", details={"field": "bank_transfer_days"}
        )
    with fb.uow() as uow:
        tenant = tenants_repo.get_tenant(uow.conn, tenant_id)
        if tenant is None:
            raise DomainError(reasons.NOT_FOUND, what="Tenant")
        now = now_for(uow, fb.clock, tenant_id)
        tenants_repo.update_tenant(uow.conn, tenant_id, payment_terms_days=terms_days)
        signals.publish(
            uow,
            Signal(
                "tenant.payment_terms_changed",
                tenant_id,
                now,
                actor.label(),
                tenant_id,
                {
                    "before": {"bank_transfer_days": tenant.get("payment_terms_days")},
                    "after": {"bank_transfer_days": terms_days},
                },
            ),
        )
        uow.commit()
    return terms_days


# -- charging: queued in the caller's transaction, asked after its commit --------------


def attempt_key(billing_key: str, number: int) -> str:
    """The idempotency key of an invoice's attempt `number`: from its billing key, which is
    fixed before the invoice exists (subscription, period, kind), so a rerun asks again the same."""
    return f"{billing_key}:attempt:{number}"


def amount_due(invoice: dict[str, Any]) -> Money:
    """What charging an invoice asks for: its amount due as stored (the total less the credit applied at issue)."""
    return Money(int(invoice["amount_due_minor"]), invoice["currency"])


def _unanswered(attempt: dict[str, Any] | None) -> bool:
    return attempt is not None and attempt["status"] == "pending" and attempt["provider_ref"] is None


def _bank_transfer(uow: UnitOfWork, tenant_id: str) -> bool:
    tenant = tenants_repo.get_tenant(uow.conn, tenant_id) or {}
    return tenant.get("payment_terms_days") is not None


def request_charge(uow: UnitOfWork, invoice: dict[str, Any], *, now: datetime, cause: str) -> dict[str, Any]:
    """One payment attempt on an open invoice, queued in the caller's transaction (the outbox):
    the provider is asked after the commit.  An attempt the provider never answered is asked
    again (same number, so same key) instead of starting a new one."""
    tenant_id, invoice_id = invoice["tenant_id"], invoice["id"]
    previous = repo.attempts(uow.conn, tenant_id, invoice_id)
    last = previous[-1] if previous else None
    method = repo.default_method(uow.conn, tenant_id)
    if last is not None and _unanswered(last):
        _arm_resend(uow, last, now)
        _send_after_commit(uow, [(tenant_id, last["id"], now)])
        return last
    number = len(previous) + 1
    row = _attempt_row(invoice, number, method, now=now, cause=cause, provider_name=provider(uow).name)
    if row["amount_minor"] == 0:  # the credit balance covers it: paid without asking the provider
        row.update(status="succeeded", details={**row["details"], "covered_by_credit": True})
        repo.insert_attempt(uow.conn, **row)
        _mark_paid(uow, invoice, now)
        return row
    if method is None:  # nothing to ask the provider: the attempt fails now, in this transaction
        row.update(status="failed", failure_code="no_payment_method", failure_message="No payment method on file.")
        repo.insert_attempt(uow.conn, **row)
        _after_failure(uow, invoice, number, ChargeResult("failed", None, "no_payment_method"), now)
        return row
    repo.insert_attempt(uow.conn, **row)
    _arm_resend(uow, row, now)
    _send_after_commit(uow, [(tenant_id, row["id"], now)])
    return row


def _attempt_row(
    invoice: dict[str, Any],
    number: int,
    method: dict[str, Any] | None,
    *,
    now: datetime,
    cause: str,
    provider_name: str,
) -> dict[str, Any]:
    amount = amount_due(invoice)
    return {
        "tenant_id": invoice["tenant_id"],
        "id": new_id("pay"),
        "invoice_id": invoice["id"],
        "attempt": number,
        "idempotency_key": attempt_key(invoice["billing_key"], number),
        "provider": provider_name,
        "provider_ref": None,
        "payment_method_id": method["id"] if method else None,
        "amount_minor": amount.amount_minor,
        "currency": amount.currency,
        "status": "pending",
        "failure_code": None,
        "failure_message": None,
        "details": {"cause": cause, "sent": QUEUED},
        "created_at": now,
    }


def _arm_resend(uow: UnitOfWork, attempt: dict[str, Any], now: datetime) -> None:
    """The outbox's safety net: ask again with the same key if no answer is recorded by then."""
    due.schedule(
        uow,
        tenant_id=attempt["tenant_id"],
        kind=RETRY,
        ref=attempt["invoice_id"],
        due_at=now + UNANSWERED_RETRY,
        now=now,
        payload={"resend": attempt["attempt"]},
    )


def _send_after_commit(uow: UnitOfWork, queued: Sequence[tuple[str, str, datetime]]) -> None:
    engine, ports = uow.engine, uow.ports
    uow.after_commit(
        lambda: send_queued(lambda readonly=False: UnitOfWork(engine, readonly=readonly, ports=ports), queued)
    )


Opener = Callable[..., UnitOfWork]  # a new unit of work of the same container: `open(readonly=...)`


def send_queued(open_uow: Opener, queued: Sequence[tuple[str, str, datetime]]) -> None:
    """Ask the provider for queued `(tenant_id, attempt_id, now)` attempts, outside any transaction,
    then record the answers in one transaction.  Nothing raised reaches the caller (its change is
    committed): an attempt left queued is asked again by its due item, with the same key."""
    try:
        work, p = _load_queued(open_uow, queued)
        answers = [
            (attempt, invoice, _ask(p, attempt, method, customer), now)
            for attempt, invoice, method, customer, now in work
        ]
        if answers:
            with open_uow() as uow:
                record_answers(uow, answers)
                uow.commit()
    except Exception:  # noqa: BLE001  (the outbox resends; nothing is lost)
        log.exception(
            "charging %d queued payment attempt(s) failed after the provider was asked; the due items ask again",
            len(queued),
        )


def _load_queued(
    open_uow: Opener, queued: Sequence[tuple[str, str, datetime]]
) -> tuple[list[tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None, str | None, datetime]], PaymentProvider]:
    work = []
    with open_uow(readonly=True) as uow:
        p = provider(uow)
        for tenant_id, attempt_id, now in queued:
            attempt = repo.attempt_by_id(uow.conn, tenant_id, attempt_id)
            invoice = invoices_repo.get(uow.conn, tenant_id, attempt["invoice_id"]) if attempt else None
            if attempt is None or invoice is None or not _unanswered(attempt) or invoice["status"] != "open":
                continue
            method = (
                repo.method_by_id(uow.conn, tenant_id, attempt["payment_method_id"])
                if attempt["payment_method_id"]
                else None
            )
            customer = repo.customer_ref(uow.conn, tenant_id, p.name)
            work.append((attempt, invoice, method, customer, now))
    return work, p


def _ask(
    p: PaymentProvider, attempt: dict[str, Any], method: dict[str, Any] | None, customer: str | None
) -> ChargeResult:
    """The provider's answer to one attempt (outside any transaction); no answer is `pending` without a reference."""
    if method is None or customer is None:
        return ChargeResult("failed", None, "no_payment_method", "No payment method on file.")
    try:
        return p.charge(
            customer_ref=customer,
            payment_method_ref=method["provider_ref"],
            amount=Money(attempt["amount_minor"], attempt["currency"]),
            idempotency_key=attempt["idempotency_key"],
            description=f"Invoice {attempt['invoice_id']}",
            metadata={"tenant_id": attempt["tenant_id"], "invoice_id": attempt["invoice_id"]},
        )
    except Exception as exc:  # noqa: BLE001  (an adapter error is an unanswered request: ask again with the key)
        log.warning("payment provider raised on %s: %s", attempt["idempotency_key"], exc)
        return ChargeResult(
            "pending", None, "provider_unavailable", f"The payment provider did not answer: {exc}"[:500]
        )


def record_answers(
    uow: UnitOfWork, answers: Sequence[tuple[dict[str, Any], dict[str, Any], ChargeResult, datetime]]
) -> None:
    """The provider's answers, in their own transaction: each attempt still unanswered gets its
    outcome; the invoices are paid (at once for all) or their failure handled (dunning, G9)."""
    paid: list[tuple[dict[str, Any], datetime]] = []
    others: list[tuple[dict[str, Any], int, ChargeResult, datetime]] = []
    for attempt, invoice, result, now in answers:
        current = repo.attempt_by_id(uow.conn, attempt["tenant_id"], attempt["id"], for_update=True)
        if current is None or not _unanswered(current):
            continue  # another process recorded this answer first
        details = {
            **current["details"],
            **result.details,
            "sent": "answered" if result.status != "pending" or result.ref else "no answer",
        }
        repo.update_attempt(
            uow.conn,
            attempt["tenant_id"],
            attempt["id"],
            status=result.status,
            provider_ref=result.ref,
            failure_code=result.failure_code,
            failure_message=result.failure_message,
            details=details,
        )
        if result.status == "pending" and result.ref is None:
            _arm_resend(uow, current, now)
            continue
        due.cancel(uow, tenant_id=attempt["tenant_id"], kind=RETRY, ref=attempt["invoice_id"], now=now)
        fresh = invoices_repo.get(uow.conn, invoice["tenant_id"], invoice["id"], for_update=True)
        if fresh is None or fresh["status"] != "open":
            continue
        if result.succeeded:
            paid.append((fresh, now))
        else:
            others.append((fresh, current["attempt"], result, now))
    _mark_all_paid(uow, paid)
    for invoice, number, result, now in others:
        _after_charge(uow, invoice, number, result, now)


def _after_charge(uow: UnitOfWork, invoice: dict[str, Any], number: int, result: ChargeResult, now: datetime) -> None:
    """What an answered attempt's outcome does to its open invoice."""
    if result.succeeded:
        _mark_paid(uow, invoice, now)
    elif result.status == "failed":
        _after_failure(uow, invoice, number, result, now)


def _mark_paid(uow: UnitOfWork, invoice: dict[str, Any], now: datetime) -> None:
    _mark_all_paid(uow, [(invoice, now)])


def _mark_all_paid(uow: UnitOfWork, paid: Sequence[tuple[dict[str, Any], datetime]]) -> None:
    """Invoices paid (each at its `now`): status, pending retries cancelled, `invoice.paid` published."""
    if not paid:
        return
    invoices_repo.mark_paid(uow.conn, [(invoice["tenant_id"], invoice["id"], now) for invoice, now in paid])
    due.cancel_all(uow, kind=RETRY, refs=[(invoice["tenant_id"], invoice["id"], now) for invoice, now in paid])
    signals.publish_all(
        uow,
        [
            Signal(
                "invoice.paid",
                invoice["tenant_id"],
                now,
                "system",
                invoice["id"],
                {"subscription_id": invoice["subscription_id"]},
            )
            for invoice, now in paid
        ],
    )


def _after_failure(uow: UnitOfWork, invoice: dict[str, Any], number: int, result: ChargeResult, now: datetime) -> None:
    if number == 1:
        data = {
            "subscription_id": invoice["subscription_id"],
            "renewal": invoice["kind"] == "renewal",
            "kind": invoice["kind"],
            "reason": result.failure_code or "failed",
        }
        signals.publish(uow, Signal("invoice.payment_failed", invoice["tenant_id"], now, "system", invoice["id"], data))
        first_failed_at = now
    else:
        first = next(
            (a for a in repo.attempts(uow.conn, invoice["tenant_id"], invoice["id"]) if a["status"] == "failed"), None
        )
        first_failed_at = first["created_at"] if first else now
    grace = timedelta(days=_grace_days(uow, invoice))
    for days in RETRY_AFTER_DAYS:
        at = first_failed_at + timedelta(days=days)
        if at > now and at < first_failed_at + grace:
            due.schedule(
                uow,
                tenant_id=invoice["tenant_id"],
                kind=RETRY,
                ref=invoice["id"],
                due_at=at,
                now=now,
                payload={"retry": days},
            )
            return


def _grace_days(uow: UnitOfWork, invoice: dict[str, Any]) -> int:
    from farebox.subscriptions import db as subscriptions_repo

    subscription = subscriptions_repo.get(uow.conn, invoice["tenant_id"], invoice["subscription_id"])
    return subscription.plan.grace_days if subscription is not None else DEFAULT_GRACE_DAYS


def settle_from_provider(
    uow: UnitOfWork, *, provider_name: str, provider_ref: str, succeeded: bool, failure_code: str | None, now: datetime
) -> bool:
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
    """Queue the charge of a just-issued invoice (G13: fees in advance are collected when
    billed); the provider is asked once the issuing transaction has committed.  A tenant
    invoiced by bank transfer is not charged: its invoice waits for its due date."""
    invoice = invoices_repo.get(uow.conn, tenant_id, invoice_id)
    if invoice is None or invoice["status"] != "open":
        return
    if _bank_transfer(uow, tenant_id):
        _await_transfer(uow, invoice, now)
        return
    request_charge(uow, invoice, now=now, cause="invoice issued")


def collect_all(uow: UnitOfWork, issued: Sequence[tuple[str, str, datetime]], *, cause: str = "invoice issued") -> None:
    """`collect` for many just-issued `(tenant_id, invoice_id, now)` at once (the billing run):
    the same queued attempts and keys, written with one statement, and one after-commit
    send that records every answer in one transaction."""
    now_of = {(t, i): now for t, i, now in issued}
    found = invoices_repo.open_among(uow.conn, list(now_of))
    open_ = [found[pair] for pair in now_of if pair in found]
    if not open_:
        return
    tenant_ids = {inv["tenant_id"] for inv in open_}
    counts = repo.attempt_counts(uow.conn, [(inv["tenant_id"], inv["id"]) for inv in open_])
    methods = repo.default_methods(uow.conn, tenant_ids)
    transfer = tenants_repo.bank_transfer_tenants(uow.conn, tenant_ids)
    rows = []
    for invoice in open_:
        tenant_id, now = invoice["tenant_id"], now_of[(invoice["tenant_id"], invoice["id"])]
        if tenant_id in transfer:
            _await_transfer(uow, invoices_repo.get(uow.conn, tenant_id, invoice["id"]) or invoice, now)
        elif tenant_id not in methods or counts[(tenant_id, invoice["id"])] or invoice["amount_due_minor"] == 0:
            request_charge(uow, invoices_repo.get(uow.conn, tenant_id, invoice["id"]) or invoice, now=now, cause=cause)
        else:
            rows.append(
                _attempt_row(invoice, 1, methods[tenant_id], now=now, cause=cause, provider_name=provider(uow).name)
            )
    repo.insert_attempts(uow.conn, rows)
    due.schedule_all(
        uow,
        kind=RETRY,
        items=[
            (r["tenant_id"], r["invoice_id"], r["created_at"] + UNANSWERED_RETRY, r["created_at"], {"resend": 1})
            for r in rows
        ],
    )
    if rows:
        _send_after_commit(uow, [(r["tenant_id"], r["id"], r["created_at"]) for r in rows])


@due.handler(RETRY)
def _retry(uow: UnitOfWork, item: dict[str, Any], now: datetime) -> str:
    """Dunning (G9): retry an unpaid invoice during grace; or ask again, with the same key,
    for an attempt that has no recorded answer (the outbox's safety net)."""
    invoice = invoices_repo.get(uow.conn, item["tenant_id"], item["ref"], for_update=True)
    if invoice is None or invoice["status"] != "open":
        return "nothing to do: invoice not open"
    if "resend" in item["payload"]:
        cause = f"resend after no answer (attempt {item['payload']['resend']})"
    else:
        cause = f"dunning retry after {item['payload'].get('retry')} day(s)"
    row = request_charge(uow, invoice, now=now, cause=cause)
    return f"retry {row['attempt']}: {'queued' if row['status'] == 'pending' else row['status']}"


# -- invoiced by bank transfer ----------------------------------------------------------

TRANSFER_DUE = "invoice.transfer_due"


def _await_transfer(uow: UnitOfWork, invoice: dict[str, Any], now: datetime) -> None:
    """A bank-transfer tenant's invoice: due `payment_terms_days` after issue; still open then, it fails."""
    tenant = tenants_repo.get_tenant(uow.conn, invoice["tenant_id"]) or {}
    due_at = now + timedelta(days=int(tenant.get("payment_terms_days") or 0))
    invoices_repo.update_invoice(uow.conn, invoice["tenant_id"], invoice["id"], due_at=due_at)
    due.schedule(uow, tenant_id=invoice["tenant_id"], kind=TRANSFER_DUE, ref=invoice["id"], due_at=due_at, now=now)


@due.handler(TRANSFER_DUE)
def _transfer_due(uow: UnitOfWork, item: dict[str, Any], now: datetime) -> str:
    """G9 for bank transfers: an invoice still open at its due date opens *Payment issue*, grace from then."""
    invoice = invoices_repo.get(uow.conn, item["tenant_id"], item["ref"], for_update=True)
    if invoice is None or invoice["status"] != "open":
        return "nothing to do: invoice not open"
    data = {
        "subscription_id": invoice["subscription_id"],
        "renewal": invoice["kind"] == "renewal",
        "kind": invoice["kind"],
        "reason": "transfer_overdue",
    }
    signals.publish(uow, Signal("invoice.payment_failed", invoice["tenant_id"], now, "system", invoice["id"], data))
    return "overdue: no transfer received by the due date"


# -- provider webhooks ------------------------------------------------------------------


def handle_webhook(fb: Farebox, provider_name: str, payload: bytes, signature: str | None) -> str:
    """A provider's event, verified by its signature (Stripe: `Stripe-Signature`).

    `payment_intent.succeeded` / `payment_intent.payment_failed` settle or fail
    the matching attempt (asynchronous outcomes); `payment_method.attached`
    (e.g. after a hosted checkout) records the card and retries open invoices.
    Returns what was done; unknown events are acknowledged and ignored.  Each
    event id is handled once: a replay (the provider retries until it gets a
    2xx) answers what the first delivery answered and changes nothing.
    """
    p = provider(fb)
    parse = getattr(p, "parse_webhook", None)
    if p.name != provider_name or parse is None:
        raise DomainError(reasons.NOT_FOUND, what="Webhook endpoint")
    try:
        event = parse(payload, signature)
    except ValueError:
        raise DomainError(reasons.PROVIDER_SIGNATURE_INVALID) from None
    event_id = str(event.get("id") or "")
    try:
        with fb.uow() as uow:
            if event_id:
                seen = repo.provider_event(uow.conn, p.name, event_id)
                if seen is not None:
                    return str(seen["outcome"])
            outcome = _handle_event(uow, fb, p.name, event)
            if event_id:
                repo.insert_provider_event(
                    uow.conn,
                    provider=p.name,
                    event_id=event_id,
                    kind=str(event["type"])[:80],
                    outcome=outcome,
                    received_at=fb.clock.now(),
                )
            uow.commit()
    except IntegrityError:  # the same event delivered twice at once: the other delivery won
        with fb.uow(readonly=True) as uow:
            seen = repo.provider_event(uow.conn, p.name, event_id)
        if seen is None:
            raise
        return str(seen["outcome"])
    return outcome


def _handle_event(uow: UnitOfWork, fb: Farebox, provider_name: str, event: dict[str, Any]) -> str:
    kind, obj = event["type"], event["data"]["object"]
    if kind in ("payment_intent.succeeded", "payment_intent.payment_failed"):
        attempt = repo.attempt_by_ref(uow.conn, provider_name, obj["id"])
        if attempt is None:
            return f"ignored {kind}: unknown payment {obj['id']}"
        now = now_for(uow, fb.clock, attempt["tenant_id"])
        error = obj.get("last_payment_error") or {}
        settle_from_provider(
            uow,
            provider_name=provider_name,
            provider_ref=obj["id"],
            succeeded=kind.endswith("succeeded"),
            failure_code=error.get("code"),
            now=now,
        )
        return f"{kind}: invoice {attempt['invoice_id']}"
    if kind == "payment_method.attached":
        tenant_id = repo.tenant_for_customer(uow.conn, provider_name, str(obj.get("customer")))
        if tenant_id is None:
            return f"ignored {kind}: unknown customer"
        now = now_for(uow, fb.clock, tenant_id)
        if repo.method_by_ref(uow.conn, tenant_id, obj["id"]) is None:
            card = obj.get("card") or {}
            repo.insert_method(
                uow.conn,
                tenant_id=tenant_id,
                id=new_id("pm"),
                provider=provider_name,
                provider_ref=obj["id"],
                brand=str(card.get("brand", "card")),
                last4=str(card.get("last4", "????")),
                is_default=True,
                created_at=now,
            )
            for invoice in invoices_repo.list_for_tenant(uow.conn, tenant_id, status="open"):
                request_charge(uow, invoice, now=now, cause=f"{kind} webhook")
        return f"{kind}: tenant {tenant_id}"
    return f"ignored {kind}"


@signals.on("invoice.voided")
def _stop_collecting(uow: UnitOfWork, signal: Signal) -> None:
    """A voided invoice is owed no more: its dunning retries, resends and transfer due date are called off."""
    for kind in (RETRY, TRANSFER_DUE):
        due.cancel(uow, tenant_id=signal.tenant_id, kind=kind, ref=str(signal.subject), now=signal.at)
