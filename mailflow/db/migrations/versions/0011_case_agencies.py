"""cases: the first agency named on each side, for the overview's counts by agency

The digest and the dashboard count the live cases per raising and receiving agency. Read from the
participants that meant a join of every live case with its participants (0.35 s of the dashboard's
0.4 s at 10^5 cases); held on the case row, each count is a range of one index. Existing cases get
the agency of their earliest participant with one on each side, as `Case.note_agency` keeps it.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SIDES = (("raising_agency", "raiser"), ("receiving_agency", "other"))


def upgrade() -> None:
    for column, side in SIDES:
        op.add_column("cases", sa.Column(column, sa.String(200), nullable=True))
        op.execute(sa.text(f"""
            UPDATE cases SET {column} = (
                SELECT p.agency FROM participants p
                WHERE p.case_id = cases.id AND p.side = '{side}' AND p.agency IS NOT NULL
                ORDER BY p.id LIMIT 1)"""))
        op.create_index(f"ix_cases_{column}", "cases", ["partnership", "state", column])


def downgrade() -> None:
    # Not batch mode: on SQLite that copies the table, and dropping the old one trips the
    # participants' foreign keys. Both databases drop a column in place (SQLite since 3.35).
    for column, _ in SIDES:
        op.drop_index(f"ix_cases_{column}", table_name="cases")
        op.execute(sa.text(f"ALTER TABLE cases DROP COLUMN {column}"))
