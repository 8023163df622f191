"""metering: the waiting-room index holds only people with a ticket (S5)

Every person of every occurrence had an entry in it, although all but the few in a waiting
room have no ticket and no query looks for them there: the index now holds the people with a
ticket only, and writing a person (a join, a batch of usage events) no longer updates it.

Revision ID: 0009_waiting_index
Revises: 0008_charging
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_waiting_index"
down_revision = "0008_charging"
branch_labels = None
depends_on = "0003_metering"  # the occurrence_people table

_COLUMNS = ["tenant_id", "occurrence_id", "waiting_ticket"]
_TICKETED = sa.text("waiting_ticket IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_occurrence_people_waiting", table_name="occurrence_people")
    op.create_index(
        "ix_occurrence_people_waiting",
        "occurrence_people",
        _COLUMNS,
        sqlite_where=_TICKETED,
        postgresql_where=_TICKETED,
    )


def downgrade() -> None:
    op.drop_index("ix_occurrence_people_waiting", table_name="occurrence_people")
    op.create_index("ix_occurrence_people_waiting", "occurrence_people", _COLUMNS)
