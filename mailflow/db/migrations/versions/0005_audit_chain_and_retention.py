"""audit trail hash-chained per partnership; anonymous counts kept of purged cases

Events gain their partnership, a sequence number in its chain, the previous event's hash, a
content hash and their own hash (see mailflow/core/audit_chain.py), and `erased_by` (the purge
that erased their content). Events already stored are chained here in the order they were
written. `audit_heads` holds each chain's last event; `retained_counts` and `retained_measures`
hold what the Board report needs of purged cases (counts, never a person).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from mailflow.core import audit_chain

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

events = sa.table(
    "events",
    sa.column("id", sa.Integer), sa.column("partnership", sa.String), sa.column("seq", sa.BigInteger),
    sa.column("case_id", sa.Integer), sa.column("at", sa.DateTime(timezone=True)),
    sa.column("actor", sa.String), sa.column("action", sa.String), sa.column("detail", sa.JSON),
    sa.column("inbound_id", sa.Integer), sa.column("prev_hash", sa.String),
    sa.column("content_hash", sa.String), sa.column("hash", sa.String),
)
cases = sa.table("cases", sa.column("id", sa.Integer), sa.column("reference", sa.String),
                 sa.column("partnership", sa.String))
inbound = sa.table("inbound_messages", sa.column("id", sa.Integer), sa.column("partnership", sa.String))


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("partnership", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("content_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("erased_by", sa.BigInteger(), nullable=True))
    op.create_table(
        "audit_heads",
        sa.Column("partnership", sa.String(length=16), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("partnership", name=op.f("pk_audit_heads")),
    )
    heads = _chain_existing_events()
    if heads:
        op.bulk_insert(sa.table("audit_heads", sa.column("partnership", sa.String),
                                sa.column("seq", sa.BigInteger), sa.column("hash", sa.String)),
                       [{"partnership": p, "seq": s, "hash": h} for p, (s, h) in heads.items()])
    with op.batch_alter_table("events") as batch:
        batch.alter_column("partnership", existing_type=sa.String(length=16), nullable=False)
        batch.create_unique_constraint("uq_events_partnership_seq", ["partnership", "seq"])
    op.create_table(
        "retained_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partnership", sa.String(length=16), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("agency", sa.String(length=200), nullable=False),
        sa.Column("stage_reached", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.Column("overdue", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retained_counts")),
        sa.UniqueConstraint("partnership", "month", "agency", "stage_reached", "outcome",
                            name="uq_retained_counts_key"),
    )
    op.create_table(
        "retained_measures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partnership", sa.String(length=16), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("measure", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("working_days", sa.Integer(), nullable=False),
        sa.Column("calendar_days", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retained_measures")),
        sa.UniqueConstraint("partnership", "month", "measure", name="uq_retained_measures_key"),
    )


def _chain_existing_events() -> dict[str, tuple[int, str]]:
    """Each stored event's partnership (its case's, else its message's) and its place in the chain."""
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(events.c.id, events.c.at, events.c.actor, events.c.action, events.c.detail,
                  events.c.inbound_id, events.c.case_id, cases.c.reference,
                  sa.func.coalesce(cases.c.partnership, inbound.c.partnership).label("owner"))
        .select_from(events.outerjoin(cases, cases.c.id == events.c.case_id)
                     .outerjoin(inbound, inbound.c.id == events.c.inbound_id))
        .order_by(events.c.id)).all()
    heads: dict[str, tuple[int, str]] = {}
    for row in rows:
        partnership = row.owner or "UNKNOWN"
        seq, prev = heads.get(partnership, (0, audit_chain.GENESIS))
        seq += 1
        content = audit_chain.content_hash(row.actor, row.reference, row.inbound_id, row.detail)
        digest = audit_chain.event_hash(partnership, seq, prev, row.at, row.action, content)
        conn.execute(events.update().where(events.c.id == row.id).values(
            partnership=partnership, seq=seq, prev_hash=prev, content_hash=content, hash=digest))
        heads[partnership] = (seq, digest)
    return heads


def downgrade() -> None:
    op.drop_table("retained_measures")
    op.drop_table("retained_counts")
    op.drop_table("audit_heads")
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint("uq_events_partnership_seq", type_="unique")
        for column in ("erased_by", "hash", "content_hash", "prev_hash", "seq", "partnership"):
            batch.drop_column(column)
