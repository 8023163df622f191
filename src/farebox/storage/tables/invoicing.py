"""Invoices, their lines and the gapless number sequences (G13)."""

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from farebox.storage.tables.base import metadata
from farebox.storage.types import Json, UTCDateTime

invoices = Table(
    "invoices",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("id", String(40), primary_key=True),
    # one invoice per subscription, period and kind (`<subscription>:<period start>:<kind>`;
    # a proration invoice uses the change's instant): a rerun can never bill twice
    Column("billing_key", String(160), nullable=False),
    Column("number", String(40), nullable=True),  # given when finalized, without gaps per issuer
    Column("subscription_id", String(40), nullable=False),
    Column("kind", String(16), nullable=False),  # subscription | renewal | proration
    # invoice, or credit_note (a negative result: its own number series, credited to the balance)
    Column("document", String(12), nullable=False, server_default="invoice"),
    Column("status", String(12), nullable=False),  # draft | open | paid | void; a credit note is `issued`
    Column("currency", String(3), nullable=False),
    Column("subtotal_minor", BigInteger, nullable=False),
    Column("tax_rate_bp", Integer, nullable=False),
    Column("tax_minor", BigInteger, nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    # the customer's credit balance set against the total when issued, and what is left to charge
    Column("credit_applied_minor", BigInteger, nullable=False, server_default="0"),
    Column("amount_due_minor", BigInteger, nullable=False, server_default="0"),
    Column("tax_id", Text, nullable=True),  # the tenant's tax id, as it was when issued
    Column("bill_to", Json, nullable=False),  # name, billing e-mail and address when issued
    Column("period_start_at", UTCDateTime, nullable=False),
    Column("period_end_at", UTCDateTime, nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("paid_at", UTCDateTime, nullable=True),
    Column("due_at", UTCDateTime, nullable=True),  # bank transfer: unpaid after this, the invoice is overdue (G9)
    Column("voided_at", UTCDateTime, nullable=True),
    Column("cause", Text, nullable=False),  # the signal or run that issued it (G3)
    UniqueConstraint("tenant_id", "billing_key", name="uq_invoices_tenant_billing_key"),
    UniqueConstraint("tenant_id", "number", name="uq_invoices_tenant_number"),
)
Index("ix_invoices_tenant_issued", invoices.c.tenant_id, invoices.c.issued_at)

invoice_lines = Table(
    "invoice_lines",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("invoice_id", String(40), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("key", String(160), nullable=False),  # what it bills (see invoicing/domain/charges.py)
    Column("kind", String(20), nullable=False),
    Column("description", Text, nullable=False),
    Column("subscription_id", String(40), nullable=False),
    Column("plan_version_id", Integer, nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("unit_amount_minor", BigInteger, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("period_start_at", UTCDateTime, nullable=False),
    Column("period_end_at", UTCDateTime, nullable=False),
    Column("service_start_at", UTCDateTime, nullable=False),
    Column("service_end_at", UTCDateTime, nullable=False),
    ForeignKeyConstraint(["tenant_id", "invoice_id"], ["invoices.tenant_id", "invoices.id"]),
)
Index(
    "ix_invoice_lines_billed",
    invoice_lines.c.tenant_id,
    invoice_lines.c.subscription_id,
    invoice_lines.c.period_start_at,
    invoice_lines.c.kind,
)

invoice_sequences = Table(
    "invoice_sequences",
    metadata,
    # the series: the issuer, `<issuer>-CN` for credit notes, `TEST-` before either on a test clock
    Column("scope", String(64), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("last_number", BigInteger, nullable=False),
)

# The customer credit balance (Stripe's customer balance, Kill Bill's credit items): one row per tenant
# and currency holding the balance, and the entries that explain it (G3): a credit note adds to it,
# an invoice it is applied to and a refund take from it, a failed refund gives back.
credit_balances = Table(
    "credit_balances",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("balance_minor", BigInteger, nullable=False),  # the sum of the entries, never below zero
)

credit_entries = Table(
    "credit_entries",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),  # + credited, - used
    Column("kind", String(20), nullable=False),  # credit_note | applied | refund | refund_failed | released
    Column("document_id", String(40), nullable=True),  # the credit note or invoice
    Column("refund_id", String(40), nullable=True),
    Column("cause", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
Index("ix_credit_entries_tenant_created", credit_entries.c.tenant_id, credit_entries.c.created_at)

credit_refunds = Table(
    "credit_refunds",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("payment_attempt_id", String(40), nullable=False),  # the charge refunded
    Column("provider", String(24), nullable=False),
    Column("charge_ref", String(120), nullable=False),
    Column("idempotency_key", String(120), nullable=False),  # `<payment attempt>:refund:<refund>`
    Column("status", String(12), nullable=False),  # pending | succeeded | failed
    Column("provider_ref", String(120), nullable=True),
    Column("failure_message", Text, nullable=True),
    Column("cause", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("settled_at", UTCDateTime, nullable=True),
    UniqueConstraint("tenant_id", "idempotency_key", name="uq_credit_refunds_tenant_idempotency_key"),
)
