"""charging: provider webhook events handled once, bank-transfer payment terms, invoice due dates

Revision ID: 0008_charging
Revises: 0007_audit
Create Date: 2026-12-04 23:20:00
"""

import sqlalchemy as sa
from alembic import op

import farebox.storage.types

revision = '0008_charging'
down_revision = '0008_billing_details'
branch_labels = None
depends_on = ('0005_invoicing',)  # the invoices table


def upgrade() -> None:
    op.create_table(
        'provider_events',
        sa.Column('provider', sa.String(length=24), nullable=False),
        sa.Column('event_id', sa.String(length=120), nullable=False),
        sa.Column('kind', sa.String(length=80), nullable=False),
        sa.Column('outcome', sa.Text(), nullable=False),
        sa.Column('received_at', farebox.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('provider', 'event_id', name=op.f('pk_provider_events')),
    )
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payment_terms_days', sa.Integer(), nullable=True))
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('due_at', farebox.storage.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_column('due_at')
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_column('payment_terms_days')
    op.drop_table('provider_events')
