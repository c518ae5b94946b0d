"""The ledger: a notice fires once because its key (case, stage, step, kind, due instant) can be
claimed once. The claim is made in the transaction that sends the notice, so a crash, a re-run
or a second worker finds the key taken."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mailflow.db.models import LedgerEntry


def claim(s: Session, case_id: int, stage: int, step: str, kind: str, due_at: datetime, now: datetime) -> bool:
    """Take the ledger key; False when this notice has already fired."""
    insert = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = (insert(LedgerEntry)
            .values(case_id=case_id, stage=stage, step=step, kind=kind, due_at=due_at, fired_at=now)
            .on_conflict_do_nothing(index_elements=["case_id", "stage", "step", "kind", "due_at"])
            .returning(LedgerEntry.id))
    return s.execute(stmt).scalar() is not None
