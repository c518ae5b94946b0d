"""outbox: a notice may wait as a draft (rendered parts and envelope), composed when sent

The sweep queues its notices as drafts: composing a MIME message costs several times rendering
it, and need not happen while the sweep holds the cases. `raw` is filled when the sender takes
the row (and the draft cleared); every row written before this revision keeps its raw.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("draft", sa.JSON(), nullable=True))
        batch.alter_column("raw", existing_type=sa.LargeBinary(), nullable=True)


def downgrade() -> None:
    # Drafts not yet sent are composed first: a downgraded outbox has every message's bytes.
    from mailflow.pipeline.outbox import compose_draft

    outbox = sa.table("outbox", sa.column("id", sa.Integer), sa.column("raw", sa.LargeBinary),
                      sa.column("draft", sa.JSON))
    bind = op.get_bind()
    for row_id, draft in bind.execute(sa.select(outbox.c.id, outbox.c.draft).where(outbox.c.raw.is_(None))).all():
        bind.execute(outbox.update().where(outbox.c.id == row_id).values(raw=compose_draft(draft or {})))
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("raw", existing_type=sa.LargeBinary(), nullable=False)
        batch.drop_column("draft")
