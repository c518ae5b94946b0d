"""participants: indexes for the overview's agencies and the case list's agency filter

The overview counts the live cases per (side, agency) from the (case_id, side, agency) index,
never the participants table; the case list's filter on an agency (case-insensitive) is a range
of the lower(agency) index, however many cases there are.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_participants_case_side_agency", "participants", ["case_id", "side", "agency"])
    op.create_index("ix_participants_agency_lower", "participants", [sa.text("lower(agency)"), "case_id"])


def downgrade() -> None:
    op.drop_index("ix_participants_agency_lower", table_name="participants")
    op.drop_index("ix_participants_case_side_agency", table_name="participants")
