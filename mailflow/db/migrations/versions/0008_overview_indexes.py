"""cases and events: indexes for the overview's counts (the digest and the dashboard at 10^5 cases)

Counts by state, stage and age come from one covering index; "resolved since", "closed since"
and the events to check are index ranges.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INDEXES = (
    ("cases", "ix_cases_overview", ["partnership", "state", "stage", "urgent", "opened_at"]),
    ("cases", "ix_cases_resolved", ["partnership", "resolved_at"]),
    ("cases", "ix_cases_closed", ["partnership", "closed_at"]),
    ("events", "ix_events_action_at", ["action", "at"]),
)


def upgrade() -> None:
    for table, name, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for table, name, _ in INDEXES:
        op.drop_index(name, table_name=table)
