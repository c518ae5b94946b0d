"""Revision 0005 chains the events a database already holds (written before the chain): each
gets its partnership (its case's, else its message's) and its place in that chain, in the order
it was written, and the upgraded trail verifies; an edit made after the upgrade is found."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command

from mailflow.db.database import Database, alembic_config
from mailflow.pipeline import audit
from tests.records.old_rows import insert_case, insert_inbound


def test_upgrade_chains_the_events_already_stored(db_url: str) -> None:
    db = Database(db_url)
    try:
        cfg = alembic_config(db)
        command.upgrade(cfg, "0004")
        at = datetime(2026, 12, 21, 10, tzinfo=UTC)
        with db.engine.begin() as conn:
            ids = {f"{prefix}-2026-0001": insert_case(conn, f"{prefix}-2026-0001", at, prefix)
                   for prefix in ("SSP", "KMS")}
            inbound = insert_inbound(conn, "x:1", at, "KMS")
            rows = [(ids["SSP-2026-0001"], None, "opened"), (ids["KMS-2026-0001"], None, "opened"),
                    (None, inbound, "quarantined"), (ids["SSP-2026-0001"], None, "note")]
            for case_id, inbound_id, action in rows:
                conn.execute(sa.text(
                    "INSERT INTO events (case_id, at, actor, action, detail, inbound_id) "
                    "VALUES (:c, :at, 'system', :a, '{\"stage\": 1}', :i)"),
                    {"c": case_id, "at": at, "a": action, "i": inbound_id})
        command.upgrade(cfg, "head")
        with db.engine.connect() as conn:
            chained = [tuple(r) for r in conn.execute(sa.text(
                "SELECT partnership, seq, action FROM events ORDER BY id"))]
        assert chained == [("SSP", 1, "opened"), ("KMS", 1, "opened"), ("KMS", 2, "quarantined"),
                           ("SSP", 2, "note")]
        with db.transaction() as s:
            assert audit.verify(s, "SSP").ok and audit.verify(s, "KMS").ok
            assert audit.verify(s, "KMS").head_seq == 2
        with db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE events SET actor = 'someone' WHERE action = 'note'"))
        with db.transaction() as s:
            problems = audit.verify(s, "SSP").problems or []
            assert len(problems) == 1 and problems[0].seq == 2 and "edited" in problems[0].what
        command.downgrade(cfg, "0004")
    finally:
        db.dispose()
