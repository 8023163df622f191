"""The customer credit balance (G3, G7): what credit notes credit, what invoices use,
and what an operator refunds through the payment provider.

* Issuing a document (`services.issuing`) opens a `CreditBook` on the tenant's balances (locked
  until the transaction ends): a credit note adds its amount, an invoice takes as much as it can
  before anything is charged; every move is a `credit_entries` row with its cause, so the balance
  is re-derived from them (`verify`).
* A voided invoice gives back the credit applied to it (a `released` entry; `invoice.voided`).
* `refund_credit` (operator) pays a balance back to the card instead: the refund rows and the
  balance entries commit first, each with an idempotency key from stable ids
  (`<payment attempt>:refund:<refund>`); the provider is called after the commit, outside any
  transaction, and its outcome recorded in a transaction of its own.  A failed refund gives the
  amount back to the balance; an unanswered one stays `pending` and is sent again, with the same
  key, by the next `refund_credit` of the tenant.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from farebox.bootstrap import Farebox
from farebox.clocks.service import now_for
from farebox.events import signals
from farebox.events.signals import Signal
from farebox.invoicing.db import credits as repo
from farebox.invoicing.db import invoices as invoices_repo
from farebox.invoicing.domain.charges import CreditUse, settle_with_credit, split_refund
from farebox.kernel import reasons
from farebox.kernel.access import Principal, require_billing_access, require_operator
from farebox.kernel.money import Money
from farebox.kernel.reasons import DomainError
from farebox.payments import service as payments
from farebox.payments.providers.base import PaymentProvider, RefundResult
from farebox.records.services import audit
from farebox.storage.ids import new_id
from farebox.storage.uow import UnitOfWork
from farebox.tenants.db import tenants as tenants_repo

Account = tuple[str, str]  # (tenant_id, currency)


@dataclass
class CreditBook:
    """The credit balances a transaction issuing documents has locked, and the entries it writes."""

    balances: dict[Account, int]
    entries: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def open(cls, conn: Connection, accounts: Iterable[Account]) -> CreditBook:
        return cls(repo.lock_balances(conn, accounts))

    def settle(self, *, tenant_id: str, currency: str, total_minor: int, document_id: str, number: str, now: datetime,
               cause: str) -> CreditUse:
        """A credit note credits the balance; an invoice takes from it (`settle_with_credit`)."""
        account = (tenant_id, currency)
        use = settle_with_credit(total_minor, self.balances.get(account, 0))
        self.balances[account] = self.balances.get(account, 0) + use.balance_change()
        if use.credited_minor:
            note = f"credit note {number} ({cause})"
            self.entries.append(entry_row(tenant_id, currency, use.credited_minor, "credit_note", note, now,
                                          document_id=document_id))
        if use.applied_minor:
            applied = f"applied to invoice {number} ({cause})"
            self.entries.append(entry_row(tenant_id, currency, -use.applied_minor, "applied", applied, now,
                                          document_id=document_id))
        return use

    def write(self, conn: Connection) -> None:
        repo.add_entries(conn, self.entries)
        self.entries = []


def entry_row(tenant_id: str, currency: str, amount_minor: int, kind: str, cause: str, now: datetime, *,
              document_id: str | None = None, refund_id: str | None = None) -> dict[str, Any]:
    """A `credit_entries` row: one move of the balance with its cause (G3)."""
    return {"tenant_id": tenant_id, "id": new_id("cre"), "currency": currency, "amount_minor": amount_minor,
            "kind": kind, "document_id": document_id, "refund_id": refund_id, "cause": cause, "created_at": now}


@signals.on("invoice.voided")
def on_invoice_voided(uow: UnitOfWork, signal: Signal) -> None:
    """A voided invoice no longer bills anything, so the credit set against it goes back to the balance (once)."""
    invoice = invoices_repo.get(uow.conn, signal.tenant_id, str(signal.subject))
    if invoice is None or invoice["status"] != "void" or not invoice["credit_applied_minor"]:
        return
    tenant_id, currency = invoice["tenant_id"], invoice["currency"]
    repo.lock_balances(uow.conn, [(tenant_id, currency)])  # one release at a time
    if repo.has_entry(uow.conn, tenant_id, invoice["id"], "released"):
        return
    cause = f"invoice {invoice['number']} voided by {signal.actor}"
    released = entry_row(tenant_id, currency, invoice["credit_applied_minor"], "released", cause, signal.at,
                         document_id=invoice["id"])
    repo.add_entries(uow.conn, [released])


@dataclass(frozen=True)
class CreditEntry:
    id: str
    amount: Money  # + credited, - used
    kind: str  # credit_note | applied | refund | refund_failed | released (a voided invoice's credit)
    document_id: str | None
    refund_id: str | None
    cause: str
    created_at: datetime


@dataclass(frozen=True)
class CreditRefund:
    id: str
    amount: Money
    status: str  # pending | succeeded | failed
    payment_attempt_id: str
    provider_ref: str | None
    failure_message: str | None
    created_at: datetime
    settled_at: datetime | None


@dataclass(frozen=True)
class CreditBalance:
    tenant_id: str
    balances: tuple[Money, ...]  # one per currency with a balance
    entries: tuple[CreditEntry, ...]  # newest first
    refunds: tuple[CreditRefund, ...]

    def of(self, currency: str) -> Money:
        return next((m for m in self.balances if m.currency == currency), Money.zero(currency))


def _entry(row: dict[str, Any]) -> CreditEntry:
    return CreditEntry(row["id"], Money(row["amount_minor"], row["currency"]), row["kind"], row["document_id"],
                       row["refund_id"], row["cause"], row["created_at"])


def _refund(row: dict[str, Any]) -> CreditRefund:
    return CreditRefund(row["id"], Money(row["amount_minor"], row["currency"]), row["status"],
                        row["payment_attempt_id"], row["provider_ref"], row["failure_message"], row["created_at"],
                        row["settled_at"])


def _require_tenant(conn: Connection, tenant_id: str) -> None:
    if tenants_repo.get_tenant(conn, tenant_id) is None:
        raise DomainError(reasons.NOT_FOUND, what="Tenant")


def credit_balance(fb: Farebox, actor: Principal, tenant_id: str, *, limit: int = 100) -> CreditBalance:
    """The tenant's credit balance per currency, its latest entries and its refunds (owners, admins, G6)."""
    require_billing_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        _require_tenant(uow.conn, tenant_id)
        balances = tuple(Money(v, c) for c, v in sorted(repo.balances(uow.conn, tenant_id).items()) if v)
        entries = tuple(_entry(r) for r in repo.entries(uow.conn, tenant_id, limit=limit))
        refunds = tuple(_refund(r) for r in repo.refunds(uow.conn, tenant_id))
    return CreditBalance(tenant_id, balances, entries, refunds)


def verify(fb: Farebox, actor: Principal, tenant_id: str) -> list[str]:
    """G3: each currency's balance equals the sum of its entries; the differences found (none expected)."""
    require_billing_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        stored, derived = repo.balances(uow.conn, tenant_id), repo.entry_sums(uow.conn, tenant_id)
    differ = [c for c in sorted(set(stored) | set(derived)) if stored.get(c, 0) != derived.get(c, 0)]
    return [f"{c}: balance {stored.get(c, 0)} != entries {derived.get(c, 0)}" for c in differ]


def refund_credit(fb: Farebox, actor: Principal, tenant_id: str, *, currency: str | None = None,
                  amount_minor: int | None = None) -> list[CreditRefund]:
    """The operator pays the credit balance (all of it, or `amount_minor`) back to the tenant's card,
    against its latest charges; refunds left pending by an earlier call are sent again first."""
    require_operator(actor)
    p = payments.provider(fb)
    with fb.uow() as uow:
        _require_tenant(uow.conn, tenant_id)
        now = now_for(uow, fb.clock, tenant_id)
        to_send = repo.pending_refunds(uow.conn, tenant_id, for_update=True)
        if not to_send:
            cause = f"refund by {actor.label()}"
            to_send = _take_for_refund(uow.conn, p, tenant_id, currency, amount_minor, now=now, cause=cause)
            audit.publish(uow, "credit.refund_requested", tenant_id=tenant_id, at=now, actor=actor,
                          subject=to_send[0]["id"], currency=to_send[0]["currency"],
                          amount_minor=sum(r["amount_minor"] for r in to_send), refunds=[r["id"] for r in to_send])
        uow.commit()
    results = [(row, _ask(p, row)) for row in to_send]  # after the commit: no provider call holds the database
    with fb.uow() as uow:
        now = now_for(uow, fb.clock, tenant_id)
        for row, result in results:
            _record(uow.conn, row, result, now)
        uow.commit()
        return [_refund(r) for r in repo.refunds(uow.conn, tenant_id, [row["id"] for row in to_send])]


def _take_for_refund(conn: Connection, p: PaymentProvider, tenant_id: str, currency: str | None,
                     amount_minor: int | None, *, now: datetime, cause: str) -> list[dict[str, Any]]:
    """Take the amount off the balance and write one pending refund per charge it goes back to."""
    if currency is None:
        positive = sorted(c for c, v in repo.balances(conn, tenant_id).items() if v > 0)
        if not positive:
            raise DomainError(reasons.NO_CREDIT_BALANCE, currency="any currency")
        currency = positive[0]
    currency = currency.upper()
    balance = repo.lock_balances(conn, [(tenant_id, currency)])[(tenant_id, currency)]
    if balance <= 0:
        raise DomainError(reasons.NO_CREDIT_BALANCE, currency=currency)
    amount = balance if amount_minor is None else amount_minor
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise DomainError(reasons.VALIDATION_ERROR, detail="`amount_minor` must be a whole number above zero",
                          details={"field": "amount_minor"})
    if amount > balance:
        raise DomainError(reasons.CREDIT_REFUND_TOO_LARGE, balance=Money(balance, currency).format())
    charges = repo.refundable_charges(conn, tenant_id, currency, p.name)
    split = split_refund(amount, [(c["id"], int(c["refundable_minor"])) for c in charges])
    missing = amount - sum(take for _, take in split)
    if missing:
        raise DomainError(reasons.NO_CHARGE_TO_REFUND, amount=Money(missing, currency).format())
    ref_of = {c["id"]: c["provider_ref"] for c in charges}
    rows, entries = [], []
    for attempt_id, take in split:
        refund_id = new_id("ref")
        rows.append({"tenant_id": tenant_id, "id": refund_id, "currency": currency, "amount_minor": take,
                     "payment_attempt_id": attempt_id, "provider": p.name, "charge_ref": ref_of[attempt_id],
                     "idempotency_key": f"{attempt_id}:refund:{refund_id}", "status": "pending", "provider_ref": None,
                     "failure_message": None, "cause": cause, "created_at": now, "settled_at": None})
        entries.append(entry_row(tenant_id, currency, -take, "refund", cause, now, refund_id=refund_id))
    repo.insert_refunds(conn, rows)
    repo.add_entries(conn, entries)
    return rows


def _ask(p: PaymentProvider, row: dict[str, Any]) -> RefundResult:
    """The provider's answer to one refund; no answer at all is `pending` (sent again with the same key)."""
    try:
        amount = Money(row["amount_minor"], row["currency"])
        return p.refund(charge_ref=row["charge_ref"], amount=amount, idempotency_key=row["idempotency_key"])
    except Exception as exc:  # noqa: BLE001  (any failure to answer leaves the refund to send again)
        return RefundResult("pending", None, f"The payment provider did not answer: {exc}"[:500])


def _record(conn: Connection, row: dict[str, Any], result: RefundResult, now: datetime) -> None:
    """A refund's outcome, in its own transaction; a failed refund gives its amount back to the balance."""
    tenant_id = row["tenant_id"]
    if result.status == "succeeded":
        repo.settle_refund(conn, tenant_id, row["id"], status="succeeded", provider_ref=result.ref, settled_at=now)
    elif result.status == "failed":
        settled = repo.settle_refund(conn, tenant_id, row["id"], status="failed", provider_ref=result.ref,
                                     failure_message=result.failure_message, settled_at=now)
        if settled:
            cause = f"refund {row['id']} failed: {result.failure_message or 'refused by the provider'}"
            back = entry_row(tenant_id, row["currency"], row["amount_minor"], "refund_failed", cause, now,
                             refund_id=row["id"])
            repo.add_entries(conn, [back])
