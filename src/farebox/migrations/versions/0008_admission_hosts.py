"""admission: hosts in an occurrence take the plan's seats (S2)

Revision ID: 0008_admission_hosts
Revises: 0007_audit
"""

from alembic import op
import sqlalchemy as sa

revision = "0008_admission_hosts"
down_revision = "0008_credits"
branch_labels = None
depends_on = "0003_metering"  # the occurrences tables


def upgrade() -> None:
    with op.batch_alter_table("occurrences", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hosts", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("occurrence_people", schema=None) as batch_op:
        batch_op.add_column(sa.Column("host", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("occurrence_people", schema=None) as batch_op:
        batch_op.drop_column("host")
    with op.batch_alter_table("occurrences", schema=None) as batch_op:
        batch_op.drop_column("hosts")
