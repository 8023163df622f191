"""metering: a conversation keeps the window before its open one (A1)

A message sent late, from before the open window, is decided against the window that was
open at its time when that is the one before the open window: it no longer opens and bills
a window of its own there.

Revision ID: 0010_earlier_window
Revises: 0009_waiting_index
"""

import sqlalchemy as sa
from alembic import op

import farebox.storage.types

revision = "0010_earlier_window"
down_revision = "0009_waiting_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "conversations", sa.Column("earlier_started_at", farebox.storage.types.UTCDateTime(timezone=True), nullable=True)
    )
    op.add_column("conversations", sa.Column("earlier_billed", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("earlier_billed")
        batch.drop_column("earlier_started_at")
