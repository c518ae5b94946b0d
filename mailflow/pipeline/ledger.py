"""The ledger: a notice fires once because its key (case, stage, step, kind, due instant) can be
claimed once. The claim is made in the transaction that sends the notice, so a crash, a re-run
or a second worker finds the key taken."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
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


def key(case_id: int, stage: int, step: str, kind: str, due_at: datetime) -> tuple[Any, ...]:
    """A ledger key as `keys_of` gives it (the instant in UTC)."""
    return (case_id, stage, step, kind, due_at.timestamp())


def keys_of(s: Session, case_ids: Iterable[int]) -> set[tuple[Any, ...]]:
    """Every key the cases hold, in one query (for a caller holding their locks)."""
    ids = list(case_ids)
    rows = s.execute(select(LedgerEntry.case_id, LedgerEntry.stage, LedgerEntry.step, LedgerEntry.kind,
                            LedgerEntry.due_at).where(LedgerEntry.case_id.in_(ids))).all() if ids else []
    return {key(*row) for row in rows}
