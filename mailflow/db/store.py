"""Small queries shared by the pipeline, the engine and the CLI."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mailflow.connectors import SyncState
from mailflow.core.references import format_reference
from mailflow.db.database import Database
from mailflow.db.models import Case, CaseCounter, InboundMessage, MailboxSync
from mailflow.pipeline.audit import append_event

# The one way an audit event is written (kept under its old name for its many callers).
record_event = append_event


def next_reference(session: Session, prefix: str, year: int) -> str:
    """The next gap-free reference. The counter row stays locked until the transaction ends,
    so two workers creating cases at once on PostgreSQL queue here; a rollback returns the number."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(CaseCounter)
        .values(partnership=prefix, year=year, last_number=1)
        .on_conflict_do_update(
            index_elements=[CaseCounter.partnership, CaseCounter.year],
            set_={"last_number": CaseCounter.last_number + 1},
        )
        .returning(CaseCounter.last_number)
    )
    number = session.execute(stmt).scalar_one()
    return format_reference(prefix, year, number)


def find_case(session: Session, reference: str, lock: bool = False) -> Case | None:
    stmt = select(Case).where(Case.reference == reference)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def message_id_key(message_id: str | None) -> str | None:
    """What the unique key holds for a Message-ID: its SHA-256, whatever its length."""
    if not message_id:
        return None
    return hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()


def find_duplicate(session: Session, partnership: str, source_id: str, message_id: str | None,
                   sha256: str) -> InboundMessage | None:
    """A message already recorded: same place in the mailbox, same Message-ID, or same bytes.
    `source_id` as stored (see bounds.fit); `message_id` whole.

    One lookup per unique key, joined by UNION ALL: each branch is an index probe, where
    `partnership = ? AND (a OR b OR c)` read every row of the partnership."""
    keys: list[Any] = [InboundMessage.source_id == source_id, InboundMessage.sha256 == sha256]
    key = message_id_key(message_id)
    if key:
        keys.append(InboundMessage.message_id_key == key)
    found = union_all(*(select(InboundMessage.id).where(InboundMessage.partnership == partnership, k)
                        for k in keys)).subquery()
    first = select(func.min(found.c.id)).scalar_subquery()
    return session.scalars(select(InboundMessage).where(InboundMessage.id == first)).first()


class DbSyncStateStore:
    """Sources keep their per-folder UIDVALIDITY / last UID / delta cursor in the database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def load(self, source: str, folder: str) -> SyncState | None:
        with self.db.transaction() as s:
            row = s.get(MailboxSync, (source, folder))
            if row is None:
                return None
            return SyncState(uidvalidity=row.uidvalidity, last_uid=row.last_uid, cursor=row.cursor)

    def save(self, source: str, folder: str, state: SyncState) -> None:
        self._upsert(source, folder, uidvalidity=state.uidvalidity, last_uid=state.last_uid, cursor=state.cursor)

    def mark_success(self, source: str, folder: str, at: datetime) -> None:
        self._upsert(source, folder, last_success_at=at)

    def _upsert(self, source: str, folder: str, **values: Any) -> None:
        """Insert or update in one statement: workers sharing the database never conflict here."""
        insert = postgresql.insert if self.db.is_postgres else sqlite.insert
        stmt = (insert(MailboxSync)
                .values(source=source, folder=folder, **{"last_uid": 0, **values})
                .on_conflict_do_update(index_elements=[MailboxSync.source, MailboxSync.folder], set_=values))
        with self.db.transaction() as s:
            s.execute(stmt)
