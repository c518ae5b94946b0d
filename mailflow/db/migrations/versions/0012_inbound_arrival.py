"""inbound_messages: when the mailbox received each message, for the sender's hourly limit

The limit counted a sender's messages by when mailflow recorded them, so mail read in one go (a
worker back after a day down, an old mailbox fed to `mailflow ingest`) counted as a flood and was
held. It now counts by when the mailbox received each message; existing rows take the time they
were recorded, which is what the limit used until now. The sender index follows the column.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("inbound_messages", sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(sa.text("UPDATE inbound_messages SET arrived_at = received_at"))
    op.create_index("ix_inbound_sender_arrival", "inbound_messages", ["partnership", "sender", "arrived_at"])
    op.drop_index("ix_inbound_sender", table_name="inbound_messages")


def downgrade() -> None:
    # Not batch mode (see 0011): both databases drop a column in place.
    op.create_index("ix_inbound_sender", "inbound_messages", ["partnership", "sender", "received_at"])
    op.drop_index("ix_inbound_sender_arrival", table_name="inbound_messages")
    op.execute(sa.text("ALTER TABLE inbound_messages DROP COLUMN arrived_at"))
