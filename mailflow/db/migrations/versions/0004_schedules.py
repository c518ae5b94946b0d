"""schedules: digests, reports and watchdog alerts claimed once per (partnership, kind, period)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("partnership", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("period", sa.String(64), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_schedules"),
        sa.UniqueConstraint("partnership", "kind", "period", name="uq_schedules_key"),
    )
    op.create_index("ix_schedules_latest", "schedules", ["partnership", "kind", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_schedules_latest", table_name="schedules")
    op.drop_table("schedules")
