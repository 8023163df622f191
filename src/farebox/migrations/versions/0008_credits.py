"""credits: credit notes, the customer credit balance and its refunds (issue 14 #5); test-clock series (#7)

Revision ID: 0008_credits
Revises: 0007_audit
Create Date: 2026-12-04 23:20:00
"""

import sqlalchemy as sa
from alembic import op

import farebox.storage.types

revision = '0008_credits'
down_revision = '0007_audit'
branch_labels = None
depends_on = ('0005_invoicing',)  # the invoices it alters


def upgrade() -> None:
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('document', sa.String(length=12), server_default='invoice', nullable=False))
        batch_op.add_column(sa.Column('credit_applied_minor', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('amount_due_minor', sa.BigInteger(), server_default='0', nullable=False))
    # what was due on the invoices issued before credits existed: their total (none was set off)
    op.execute("UPDATE invoices SET amount_due_minor = total_minor WHERE total_minor > 0")

    op.create_table('credit_balances',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('balance_minor', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_balances_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', 'currency', name=op.f('pk_credit_balances'))
    )
    op.create_table('credit_entries',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('document_id', sa.String(length=40), nullable=True),
    sa.Column('refund_id', sa.String(length=40), nullable=True),
    sa.Column('cause', sa.Text(), nullable=False),
    sa.Column('created_at', farebox.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_entries_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_credit_entries'))
    )
    with op.batch_alter_table('credit_entries', schema=None) as batch_op:
        batch_op.create_index('ix_credit_entries_tenant_created', ['tenant_id', 'created_at'], unique=False)
    op.create_table('credit_refunds',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('payment_attempt_id', sa.String(length=40), nullable=False),
    sa.Column('provider', sa.String(length=24), nullable=False),
    sa.Column('charge_ref', sa.String(length=120), nullable=False),
    sa.Column('idempotency_key', sa.String(length=120), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('provider_ref', sa.String(length=120), nullable=True),
    sa.Column('failure_message', sa.Text(), nullable=True),
    sa.Column('cause', sa.Text(), nullable=False),
    sa.Column('created_at', farebox.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('settled_at', farebox.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_refunds_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_credit_refunds')),
    sa.UniqueConstraint('tenant_id', 'idempotency_key', name='uq_credit_refunds_tenant_idempotency_key')
    )
    # A negative invoice issued before credit notes existed was marked `paid` and its credit lost (audit #5):
    # it becomes the credit note it should have been (its number stays), and its credit goes to the balance.
    negative = "total_minor < 0 AND status <> 'void'"
    op.execute(
        "INSERT INTO credit_entries (tenant_id, id, currency, amount_minor, kind, document_id, refund_id, cause, created_at) "
        "SELECT tenant_id, 'crm_' || id, currency, -total_minor, 'credit_note', id, NULL, "
        "'negative invoice ' || number || ' issued before credit notes (migration 0008)', issued_at "
        f"FROM invoices WHERE {negative}"
    )
    op.execute(
        "INSERT INTO credit_balances (tenant_id, currency, balance_minor) "
        f"SELECT tenant_id, currency, SUM(-total_minor) FROM invoices WHERE {negative} GROUP BY tenant_id, currency"
    )
    op.execute(f"UPDATE invoices SET document = 'credit_note', status = 'issued', paid_at = NULL WHERE {negative}")


def downgrade() -> None:
    op.drop_table('credit_refunds')
    with op.batch_alter_table('credit_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_entries_tenant_created')
    op.drop_table('credit_entries')
    op.drop_table('credit_balances')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_column('amount_due_minor')
        batch_op.drop_column('credit_applied_minor')
        batch_op.drop_column('document')
