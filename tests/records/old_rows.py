"""Rows written straight into a database held at an older revision, for the migration tests: the
columns every revision has had, nothing a later one added."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa


def insert_case(conn: sa.Connection, reference: str, at: datetime, partnership: str = "SSP") -> int:
    """An open Stage 1 Swindon case opened at `at`; its id."""
    return int(conn.execute(sa.text(
        "INSERT INTO cases (reference, partnership, policy, state, stage, urgent, fields, missing, "
        "opened_at, stage_started_at, updated_at) VALUES (:ref, :p, 'swindon', 'open', 1, false, "
        "'{}', '[]', :at, :at, :at) RETURNING id"), {"ref": reference, "p": partnership, "at": at}).scalar_one())


def insert_inbound(conn: sa.Connection, source_id: str, at: datetime, partnership: str = "SSP",
                   sender: str | None = None, outcome: str = "quarantined") -> int:
    """A message recorded at `at`; its id."""
    return int(conn.execute(sa.text(
        "INSERT INTO inbound_messages (partnership, source_id, sha256, sender, raw, size, received_at, outcome) "
        "VALUES (:p, :s, :sha, :sender, :raw, 3, :at, :o) RETURNING id"),
        {"p": partnership, "s": source_id, "sha": source_id.encode().hex(), "sender": sender, "raw": b"raw",
         "at": at, "o": outcome}).scalar_one())
