"""inbound messages: unique per partnership by Message-ID (hashed) and by SHA-256

Two workers reading the same mailbox used to record the same message twice (check, then
insert). The unique keys make the second insert fail, and the pipeline settles it as already
recorded. The Message-ID is keyed by its SHA-256: a long one does not fit a PostgreSQL btree
entry (about 2.7 KB).

Rows recorded twice before this revision keep their first copy's keys; a later copy gets no
Message-ID key and its sha256 is replaced by "duplicate-<its id>-of-<first id>" (its raw bytes are kept,
so the digest can be computed again).

Revision ID: 0003
Revises: 0002
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

inbound = sa.table(
    "inbound_messages",
    sa.column("id", sa.Integer), sa.column("partnership", sa.String), sa.column("message_id", sa.String),
    sa.column("message_id_key", sa.String), sa.column("sha256", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table("inbound_messages") as batch:
        batch.add_column(sa.Column("message_id_key", sa.String(length=64), nullable=True))
    _fill_keys_and_mark_duplicates()
    with op.batch_alter_table("inbound_messages") as batch:
        batch.drop_index("ix_inbound_message_id")
        batch.drop_index("ix_inbound_sha256")
        batch.create_unique_constraint("uq_inbound_message_id", ["partnership", "message_id_key"])
        batch.create_unique_constraint("uq_inbound_sha256", ["partnership", "sha256"])


def _fill_keys_and_mark_duplicates() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(inbound.c.id, inbound.c.partnership, inbound.c.message_id, inbound.c.sha256)
                        .order_by(inbound.c.id)).all()
    first_by_key: dict[tuple[str, str], int] = {}
    first_by_sha: dict[tuple[str, str], int] = {}
    for row_id, partnership, message_id, sha in rows:
        values: dict[str, str] = {}
        if message_id:
            key = hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()
            if first_by_key.setdefault((partnership, key), row_id) == row_id:
                values["message_id_key"] = key
        if first_by_sha.setdefault((partnership, sha), row_id) != row_id:
            values["sha256"] = f"duplicate-{row_id}-of-{first_by_sha[(partnership, sha)]}"[:64]
        if values:
            conn.execute(inbound.update().where(inbound.c.id == row_id).values(**values))


def downgrade() -> None:
    with op.batch_alter_table("inbound_messages") as batch:
        batch.drop_constraint("uq_inbound_sha256", type_="unique")
        batch.drop_constraint("uq_inbound_message_id", type_="unique")
        batch.create_index("ix_inbound_sha256", ["partnership", "sha256"], unique=False)
        batch.create_index("ix_inbound_message_id", ["partnership", "message_id"], unique=False)
        batch.drop_column("message_id_key")
