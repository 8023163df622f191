"""tenant billing details: legal name and postal address (D7, G13)

Revision ID: 0008_billing_details
Revises: 0007_audit
Create Date: 2026-12-04 23:20:00
"""

from alembic import op
import sqlalchemy as sa

revision = "0008_billing_details"
down_revision = "0008_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("legal_name", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("billing_address", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("billing_address")
        batch_op.drop_column("legal_name")
