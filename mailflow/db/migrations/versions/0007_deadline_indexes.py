"""deadlines: the sweep's due order and a case's next deadline read from indexes

`ix_deadlines_due` gains `id`: the sweep takes due rows in (due_at, id) order, and without `id`
in the index every call sorted all due rows (a Board's reminders share 09:00). A case's pending
deadlines in due order (`cases list`, the case-list read model) come from (case_id, state,
due_at), which also serves every lookup by case_id.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deadlines") as batch:
        batch.drop_index("ix_deadlines_due")
        batch.drop_index("ix_deadlines_case_id")
        batch.create_index("ix_deadlines_due", ["state", "due_at", "id"], unique=False)
        batch.create_index("ix_deadlines_case_due", ["case_id", "state", "due_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deadlines") as batch:
        batch.drop_index("ix_deadlines_case_due")
        batch.drop_index("ix_deadlines_due")
        batch.create_index("ix_deadlines_case_id", ["case_id"], unique=False)
        batch.create_index("ix_deadlines_due", ["state", "due_at"], unique=False)
