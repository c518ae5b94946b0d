"""ledger: the due instant is part of the exactly-once key

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ledger") as batch:
        batch.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE ledger SET due_at = fired_at WHERE due_at IS NULL")
    with op.batch_alter_table("ledger") as batch:
        batch.alter_column("due_at", nullable=False)
        batch.drop_constraint("uq_ledger_notice", type_="unique")
        batch.create_unique_constraint("uq_ledger_notice", ["case_id", "stage", "step", "kind", "due_at"])


def downgrade() -> None:
    with op.batch_alter_table("ledger") as batch:
        batch.drop_constraint("uq_ledger_notice", type_="unique")
        batch.create_unique_constraint("uq_ledger_notice", ["case_id", "stage", "step", "kind"])
        batch.drop_column("due_at")
