"""Invoices as owners and admins see them (G6, G13): list, get, preview, PDF, e-mail, void.

The portal's Billing tab and the API call these; each returns plain dataclasses.  A credit note
is read with the same functions: `list_invoices(..., document="credit_note")`.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from farebox.bootstrap import Farebox
from farebox.clocks.service import now_for
from farebox.invoicing.db import credits as credits_repo
from farebox.invoicing.db import invoices as repo
from farebox.invoicing.domain.billing_details import bill_to
from farebox.invoicing.domain.charges import Charge, InvoiceKind, document_for, recompute, settle_with_credit, totals
from farebox.invoicing.services import issuing as invoicing
from farebox.kernel import reasons
from farebox.kernel.access import Principal, require_billing_access, require_operator
from farebox.kernel.money import Money
from farebox.kernel.periods import Period, period_at
from farebox.kernel.reasons import DomainError
from farebox.mail import ConsoleMailer
from farebox.records.services import audit
from farebox.subscriptions import db as subscriptions_repo
from farebox.tenants.db import tenants as tenants_repo


@dataclass(frozen=True)
class InvoiceLine:
    kind: str  # fee | proration_credit | proration_charge | overage
    description: str
    quantity: int
    unit_amount: Money
    amount: Money
    period_start_at: datetime
    period_end_at: datetime
    service_start_at: datetime
    service_end_at: datetime


@dataclass(frozen=True)
class Invoice:
    id: str | None  # None for a preview
    tenant_id: str
    number: str | None  # None for a preview
    subscription_id: str
    kind: str  # subscription | renewal | proration
    status: str  # draft (a preview) | open | paid | void; a credit note: issued
    currency: str
    subtotal: Money
    tax_rate_bp: int
    tax: Money
    total: Money
    tax_id: str | None
    bill_to: dict[str, Any]
    period_start_at: datetime
    period_end_at: datetime
    issued_at: datetime
    paid_at: datetime | None
    lines: tuple[InvoiceLine, ...]
    document: str = "invoice"  # invoice | credit_note (a negative total, credited to the balance)
    credit_applied: Money | None = None  # the credit balance set against the total when issued
    amount_due: Money | None = None  # the total less the credit applied: what the payment charges

    @property
    def is_credit_note(self) -> bool:
        return self.document == "credit_note"


def _line(row: dict[str, Any], currency: str) -> InvoiceLine:
    return InvoiceLine(
        row["kind"],
        row["description"],
        row["quantity"],
        Money(row["unit_amount_minor"], currency),
        Money(row["amount_minor"], currency),
        row["period_start_at"],
        row["period_end_at"],
        row["service_start_at"],
        row["service_end_at"],
    )


def _invoice(row: dict[str, Any], lines: list[dict[str, Any]]) -> Invoice:
    c = row["currency"]
    return Invoice(
        row["id"],
        row["tenant_id"],
        row["number"],
        row["subscription_id"],
        row["kind"],
        row["status"],
        c,
        Money(row["subtotal_minor"], c),
        row["tax_rate_bp"],
        Money(row["tax_minor"], c),
        Money(row["total_minor"], c),
        row["tax_id"],
        dict(row["bill_to"] or {}),
        row["period_start_at"],
        row["period_end_at"],
        row["issued_at"],
        row["paid_at"],
        tuple(_line(line, c) for line in lines),
        row["document"],
        Money(row["credit_applied_minor"], c),
        Money(row["amount_due_minor"], c),
    )


def list_invoices(fb: Farebox, actor: Principal, tenant_id: str, *, status: str | None = None, limit: int = 100,
                  document: str | None = "invoice") -> list[Invoice]:
    """The tenant's invoices (`document="credit_note"`: its credit notes; None: both), newest first
    (owners and admins, G6)."""
    require_billing_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        if tenants_repo.get_tenant(uow.conn, tenant_id) is None:
            raise DomainError(reasons.NOT_FOUND, what="Tenant")
        rows = repo.list_for_tenant(uow.conn, tenant_id, status=status, document=document, limit=limit)
        return [_invoice(r, repo.lines(uow.conn, tenant_id, r["id"])) for r in rows]


def get_invoice(fb: Farebox, actor: Principal, tenant_id: str, invoice_id: str) -> Invoice:
    require_billing_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        row = repo.get(uow.conn, tenant_id, invoice_id)
        if row is None:
            raise DomainError(reasons.NOT_FOUND, what="Invoice")
        return _invoice(row, repo.lines(uow.conn, tenant_id, invoice_id))


def invoice_pdf(fb: Farebox, actor: Principal, tenant_id: str, invoice_id: str) -> bytes:
    """The invoice as a PDF (rendered from an HTML template; its text is extractable)."""
    from farebox.invoicing.pdf import render_invoice

    return render_invoice(get_invoice(fb, actor, tenant_id, invoice_id))


def preview_next_invoice(fb: Farebox, actor: Principal, tenant_id: str) -> Invoice | None:
    """A dry run of the renewal invoice at the end of the current period (nothing is saved):
    the next period's fee and this period's overage so far."""
    require_billing_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        now = now_for(uow, fb.clock, tenant_id)
        subscription = subscriptions_repo.current(uow.conn, tenant_id)
        if subscription is None or not subscription.is_live:
            return None
        current = subscription.period
        following = period_at(subscription.anchor_at, subscription.plan.interval, current.end)
        should = invoicing.period_charges(
            uow, subscription, following, previous=Period(max(current.start, subscription.starts_at), current.end, 0)
        )
        if subscription.cancel_at_period_end:
            should = [c for c in should if c.period_start_at < following.start]
        lines = recompute(should, repo.billed_by_key(uow.conn, tenant_id, [subscription.id]))
        tenant = tenants_repo.get_tenant(uow.conn, tenant_id) or {}
        balances = credits_repo.balances(uow.conn, tenant_id)
    if not lines:
        return None
    return _draft(tenant_id, tenant, subscription.id, following, lines, now, balances)


def _draft(
    tenant_id: str,
    tenant: dict[str, Any],
    subscription_id: str,
    period: Period,
    lines: list[Charge],
    now: datetime,
    balances: dict[str, int],
) -> Invoice:
    currency = lines[0].currency
    t = totals(lines, currency=currency, tax_rate_bp=int(tenant.get("tax_rate_bp") or 0))
    use = settle_with_credit(t.total.amount_minor, balances.get(currency, 0))  # what the balance would cover today
    rows = [
        InvoiceLine(
            c.kind.value,
            c.description,
            c.quantity,
            Money(c.unit_amount_minor, currency),
            Money(c.amount_minor, currency),
            c.period_start_at,
            c.period_end_at,
            c.service_start_at,
            c.service_end_at,
        )
        for c in lines
    ]
    return Invoice(
        None,
        tenant_id,
        None,
        subscription_id,
        InvoiceKind.RENEWAL.value,
        "draft",
        currency,
        t.subtotal,
        t.tax_rate_bp,
        t.tax,
        t.total,
        tenant.get("tax_id"),
        bill_to(tenant),
        period.start,
        period.end,
        now,
        None,
        tuple(rows),
        document_for(t.total.amount_minor).value,
        Money(use.applied_minor, currency),
        Money(use.amount_due_minor, currency),
    )


def void_invoice(fb: Farebox, actor: Principal, tenant_id: str, invoice_id: str, *, reason: str) -> Invoice:
    """The operator voids an open invoice, saying why: it keeps its number (no gaps), its lines no
    longer count as billed, and `invoice.voided` (audited with who and why) stops its dunning and
    takes the subscription out of *Payment issue* when nothing else is overdue (G9)."""
    require_operator(actor)
    why = reason.strip()
    if not why:
        raise DomainError(reasons.VALIDATION_ERROR, detail="say why the invoice is voided", details={"field": "reason"})
    with fb.uow() as uow:
        now = now_for(uow, fb.clock, tenant_id)
        row = repo.get(uow.conn, tenant_id, invoice_id, for_update=True)
        if row is None:
            raise DomainError(reasons.NOT_FOUND, what="Invoice")
        if row["status"] != "open":
            raise DomainError(reasons.INVOICE_NOT_OPEN, status=row["status"], action="voided")
        repo.update_invoice(uow.conn, tenant_id, invoice_id, status="void", voided_at=now)
        audit.publish(
            uow,
            "invoice.voided",
            tenant_id=tenant_id,
            at=now,
            actor=actor,
            subject=invoice_id,
            before={"status": row["status"]},
            after={"status": "void", "number": row["number"]},
            subscription_id=row["subscription_id"],
            number=row["number"],
            total_minor=row["total_minor"],
            currency=row["currency"],
            reason=why[:500],
        )
        uow.commit()
    return get_invoice(fb, actor, tenant_id, invoice_id)


# -- e-mail ---------------------------------------------------------------------------

def email_invoice(fb: Farebox, actor: Principal, tenant_id: str, invoice_id: str, *, to: str) -> str:
    """E-mail the invoice PDF to an extra recipient, copied to the tenant's billing e-mail (G13)."""
    if "@" not in to or len(to) > 254:
        raise DomainError(reasons.VALIDATION_ERROR, detail="`to` must be an e-mail address", details={"field": "to"})
    invoice = get_invoice(fb, actor, tenant_id, invoice_id)
    pdf = invoice_pdf(fb, actor, tenant_id, invoice_id)
    message = EmailMessage()
    message["To"] = to
    if invoice.bill_to.get("email"):
        message["Cc"] = invoice.bill_to["email"]
    message["Subject"] = f"Invoice {invoice.number}: {invoice.total.format()}"
    message.set_content(f"Invoice {invoice.number} for {invoice.total.format()} is attached.")
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"{invoice.number}.pdf")
    try:
        (fb.ports.mailer or ConsoleMailer()).send(message)  # after the reads above: no unit of work is open
    except (smtplib.SMTPException, OSError) as exc:
        raise DomainError(reasons.EMAIL_NOT_SENT, detail=f"{type(exc).__name__}: {exc}"[:300]) from exc
    return to
