"""Revision 0003 adds the unique keys on inbound messages to a database that already holds
messages recorded twice (by two workers, before the keys): it upgrades, keeping the first copy's
keys, and down again."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command

from mailflow.db.database import Database, alembic_config


def test_upgrade_over_messages_recorded_twice(db_url: str) -> None:
    db = Database(db_url)
    try:
        cfg = alembic_config(db)
        command.upgrade(cfg, "0002")
        sha = hashlib.sha256(b"raw").hexdigest()
        row = {"partnership": "SSP", "message_id": "<twice@example.org>", "sha256": sha, "raw": b"raw",
               "size": 3, "received_at": datetime(2026, 12, 21, tzinfo=UTC), "outcome": "processed"}
        table = sa.table("inbound_messages", *(sa.column(k) for k in [*row, "source_id"]))
        with db.engine.begin() as conn:
            conn.execute(table.insert(), [{**row, "source_id": f"imap:INBOX:1:{n}"} for n in (1, 2, 3)])
        command.upgrade(cfg, "head")
        with db.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, message_id_key, sha256 FROM inbound_messages ORDER BY id")).all()
        first = rows[0].id
        assert rows[0].message_id_key == hashlib.sha256(b"<twice@example.org>").hexdigest()
        assert rows[0].sha256 == sha
        assert [(r.message_id_key, r.sha256) for r in rows[1:]] == [
            (None, f"duplicate-{r.id}-of-{first}") for r in rows[1:]]
        command.downgrade(cfg, "0002")
        command.upgrade(cfg, "head")
    finally:
        db.dispose()
