"""Revision 0011 gives the cases a database already holds their raising and receiving agencies:
the agency of the earliest participant that names one on each side, as `Case.note_agency` keeps
it for new cases; a side that names none stays empty (counted as "agency not identified")."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command

from mailflow.db.database import Database, alembic_config
from tests.records.old_rows import insert_case


def test_upgrade_fills_the_agencies_of_the_cases_already_stored(db_url: str) -> None:
    db = Database(db_url)
    try:
        cfg = alembic_config(db)
        command.upgrade(cfg, "0010")
        at = datetime(2026, 12, 21, 10, tzinfo=UTC)
        with db.engine.begin() as conn:
            one, two = (insert_case(conn, ref, at) for ref in ("SSP-2026-0001", "SSP-2026-0002"))
            people = [  # (case, email, role, side, agency) in the order they joined
                (one, "a@x.example", "raiser", "raiser", None),              # no agency named yet
                (one, "b@x.example", "other", "other", "Agency Other"),
                (one, "c@x.example", "submitter", "raiser", "Agency Raising"),
                (one, "d@x.example", "manager", "raiser", "Agency Later"),   # not the first: ignored
                (one, "e@x.example", "manager", "other", "Agency Third"),
                (two, "f@x.example", "raiser", "raiser", "Agency Raising"),
                (two, "g@x.example", "board", "partnership", "The Board"),   # neither side
            ]
            for case_id, email, role, side, agency in people:
                conn.execute(sa.text(
                    "INSERT INTO participants (case_id, email, role, side, agency) VALUES (:c, :e, :r, :s, :a)"),
                    {"c": case_id, "e": email, "r": role, "s": side, "a": agency})
        command.upgrade(cfg, "head")
        with db.engine.connect() as conn:
            got = {r.reference: (r.raising_agency, r.receiving_agency) for r in conn.execute(sa.text(
                "SELECT reference, raising_agency, receiving_agency FROM cases"))}
        assert got == {"SSP-2026-0001": ("Agency Raising", "Agency Other"),
                       "SSP-2026-0002": ("Agency Raising", None)}
        command.downgrade(cfg, "0010")
        assert "raising_agency" not in {c["name"] for c in sa.inspect(db.engine).get_columns("cases")}
    finally:
        db.dispose()
