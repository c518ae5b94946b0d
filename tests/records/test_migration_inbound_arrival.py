"""Revision 0012 gives the messages a database already holds their arrival: the time they were
recorded, which is what the sender's hourly limit counted until then; so right after an upgrade
the limit holds exactly what it held before, and a downgrade puts the old index back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import command

from mailflow.db.database import Database, alembic_config
from tests.records.old_rows import insert_inbound


def test_upgrade_gives_stored_messages_their_recorded_time_as_arrival(db_url: str) -> None:
    db = Database(db_url)
    try:
        cfg = alembic_config(db)
        command.upgrade(cfg, "0011")
        at = datetime(2026, 12, 21, 10, tzinfo=UTC)
        with db.engine.begin() as conn:
            for i in range(3):
                insert_inbound(conn, f"x:{i}", at + timedelta(minutes=i), sender="jo@x.example")
        command.upgrade(cfg, "head")
        with db.engine.connect() as conn:
            rows = [(r.received_at, r.arrived_at) for r in conn.execute(sa.text(
                "SELECT received_at, arrived_at FROM inbound_messages ORDER BY id"))]
        assert len(rows) == 3 and all(str(a) == str(r) for r, a in rows)
        indexes = {i["name"]: i["column_names"] for i in sa.inspect(db.engine).get_indexes("inbound_messages")}
        assert indexes.get("ix_inbound_sender_arrival") == ["partnership", "sender", "arrived_at"]
        assert "ix_inbound_sender" not in indexes
        command.downgrade(cfg, "0011")
        inspector = sa.inspect(db.engine)
        assert "arrived_at" not in {c["name"] for c in inspector.get_columns("inbound_messages")}
        assert {i["name"] for i in inspector.get_indexes("inbound_messages")} >= {"ix_inbound_sender"}
    finally:
        db.dispose()
