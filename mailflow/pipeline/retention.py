"""Retention (UK GDPR storage limitation): what a partnership no longer needs is removed, and
the Board report for old periods still adds up.

A case closed or withdrawn more than `retention_years_after_closure` whole years ago is purged:
the case row, its participants, deadlines, ledger entries, outbox rows (with the attached forms
they carried) and inbound messages (raw bytes, attachments inside), and the .eml copies a
`file` transport wrote of its mail. Messages and notices belonging to no case (quarantined or
discarded mail, bounces, digests) go the same number of years after they were received or
written. Before anything is deleted, the cases are added to anonymous monthly totals
(`retained_counts`, `retained_measures`: see mailflow/queries/board_report.py).

The audit trail keeps every event's place: an event about purged data has its content erased
(who, which case, which message, the detail: all personal data) but keeps its header and its
content hash, so the hash chain still verifies end to end and a deletion is still a deletion.
Each purge appends one `purged` event per partnership counting what it erased; `audit verify`
checks each erased event is accounted for by such an event. (Chosen over a chain per case,
which cannot show that a whole case's chain was deleted, and over a "purged up to" checkpoint,
which assumes cases close in the order their events were written: they do not.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mailflow.db.models import (
    Case,
    Deadline,
    Event,
    InboundMessage,
    LedgerEntry,
    OutboxMessage,
    Participant,
    RetainedCount,
    RetainedMeasure,
)
from mailflow.pipeline.audit import PURGED, append_event
from mailflow.queries.board_report import measures_of
from mailflow.transports.file import FileTransport

if TYPE_CHECKING:
    from mailflow.app import App, PartnershipRuntime

log = logging.getLogger(__name__)

FINISHED = ("closed", "withdrawn")
SETTLED_OUTBOX = ("sent", "failed", "bounced")
CHUNK = 500


@dataclass
class PurgePlan:
    partnership: str
    years: int
    before: datetime                      # closed (or received, written) before this instant
    references: list[str] = field(default_factory=list)
    case_ids: list[int] = field(default_factory=list)
    inbound_ids: list[int] = field(default_factory=list)
    outbox_ids: list[int] = field(default_factory=list)
    event_ids: list[int] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.case_ids or self.inbound_ids or self.outbox_ids or self.event_ids or self.files)


def years_before(now: datetime, years: int) -> datetime:
    """The same instant `years` whole years earlier (29 February -> 28 February)."""
    try:
        return now.replace(year=now.year - years)
    except ValueError:
        return now.replace(year=now.year - years, day=28)


def plan(s: Session, rt: PartnershipRuntime, now: datetime) -> PurgePlan:
    years = rt.config.retention_years_after_closure
    p = PurgePlan(rt.prefix, years, years_before(now, years))
    cases = s.execute(select(Case.id, Case.reference).where(
        Case.partnership == rt.prefix, Case.state.in_(FINISHED), Case.closed_at.is_not(None),
        Case.closed_at < p.before).order_by(Case.id)).all()
    p.case_ids, p.references = [c for c, _ in cases], [r for _, r in cases]
    p.inbound_ids = _ids(s, InboundMessage, InboundMessage.partnership == rt.prefix, p.case_ids,
                         loose=InboundMessage.received_at < p.before)
    p.outbox_ids = _ids(s, OutboxMessage, OutboxMessage.partnership == rt.prefix, p.case_ids,
                        loose=(OutboxMessage.created_at < p.before) & OutboxMessage.state.in_(SETTLED_OUTBOX))
    erase = [Event.partnership == rt.prefix, Event.erased_by.is_(None)]
    for chunk_cases, chunk_inbound in _pairs(p.case_ids, p.inbound_ids):
        p.event_ids += list(s.scalars(select(Event.id).where(
            *erase, or_(Event.case_id.in_(chunk_cases), Event.inbound_id.in_(chunk_inbound)))))
    p.event_ids = sorted(set(p.event_ids))
    transport = _file_transport(rt)
    if transport is not None:
        for chunk in _chunks(p.outbox_ids):
            for message_id in s.scalars(select(OutboxMessage.message_id).where(OutboxMessage.id.in_(chunk))):
                path = transport.path_for(message_id)
                if path.exists():
                    p.files.append(path)
    return p


def _ids(s: Session, model: Any, mine: Any, case_ids: list[int], loose: Any) -> list[int]:
    """Rows of the purged cases, and rows of no case past the cut-off."""
    found = set(s.scalars(select(model.id).where(mine, model.case_id.is_(None), loose)))
    for chunk in _chunks(case_ids):
        found |= set(s.scalars(select(model.id).where(model.case_id.in_(chunk))))
    return sorted(found)


def _file_transport(rt: PartnershipRuntime) -> FileTransport | None:
    try:
        transport = rt.transport
    except Exception:  # noqa: BLE001 - a transport that cannot be built has written no files here
        return None
    return transport if isinstance(transport, FileTransport) else None


def purge(app: App, now: datetime, who: str, dry_run: bool = False) -> list[PurgePlan]:
    """Each partnership's purge in its own transaction; with `dry_run`, the plans only."""
    plans = []
    calendars = {name: policy.calendar for name, policy in app.policies.items()}
    for rt in app.runtimes():
        with app.db.transaction() as s:
            p = plan(s, rt, now)
            plans.append(p)
            if dry_run or p.empty:
                continue
            _keep_counts(s, p, calendars)
            _remove(s, p, who, now)
        for path in p.files:    # after the commit: a crash leaves a file, never a row pointing nowhere
            path.unlink(missing_ok=True)
        log.info("purged %s: %d cases, %d inbound, %d outbox, %d events erased, %d files",
                 p.partnership, len(p.case_ids), len(p.inbound_ids), len(p.outbox_ids), len(p.event_ids),
                 len(p.files))
    return plans


def _keep_counts(s: Session, p: PurgePlan, calendars: Any) -> None:
    counts, measures = measures_of(s, p.case_ids, calendars)
    insert = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
    for row in counts:
        stmt = insert(RetainedCount).values(**row)
        s.execute(stmt.on_conflict_do_update(
            index_elements=["partnership", "month", "agency", "stage_reached", "outcome"],
            set_={"cases": RetainedCount.cases + stmt.excluded.cases,
                  "overdue": RetainedCount.overdue + stmt.excluded.overdue}))
    for row in measures:
        mstmt = insert(RetainedMeasure).values(**row)
        working: Any = RetainedMeasure.working_days + mstmt.excluded.working_days
        if row["measure"].startswith("stage_longest:"):   # the longest of all, not a total
            working = case((mstmt.excluded.working_days > RetainedMeasure.working_days, mstmt.excluded.working_days),
                           else_=RetainedMeasure.working_days)
        s.execute(mstmt.on_conflict_do_update(
            index_elements=["partnership", "month", "measure"],
            set_={"count": RetainedMeasure.count + mstmt.excluded.count, "working_days": working,
                  "calendar_days": RetainedMeasure.calendar_days + mstmt.excluded.calendar_days}))


def _remove(s: Session, p: PurgePlan, who: str, now: datetime) -> None:
    record = append_event(s, now, who, PURGED, partnership=p.partnership, before=p.before.isoformat(),
                          years=p.years, cases=len(p.case_ids), messages_in=len(p.inbound_ids),
                          messages_out=len(p.outbox_ids), files=len(p.files), events_erased=len(p.event_ids))
    s.flush()
    for chunk in _chunks(p.event_ids):
        s.execute(update(Event).where(Event.id.in_(chunk)).values(
            actor="", detail={}, case_id=None, inbound_id=None, erased_by=record.id))
    for chunk in _chunks(p.case_ids):
        for model in (Participant, Deadline, LedgerEntry):
            s.execute(delete(model).where(model.case_id.in_(chunk)))
    for chunk in _chunks(p.outbox_ids):
        s.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(chunk)))
    for chunk in _chunks(p.inbound_ids):
        s.execute(delete(InboundMessage).where(InboundMessage.id.in_(chunk)))
    for chunk in _chunks(p.case_ids):
        s.execute(delete(Case).where(Case.id.in_(chunk)))


def _chunks(items: list[int]) -> Iterable[list[int]]:
    for i in range(0, len(items), CHUNK):
        yield items[i:i + CHUNK]


def _pairs(a: list[int], b: list[int]) -> Iterable[tuple[list[int], list[int]]]:
    n = max(len(a), len(b))
    for i in range(0, n, CHUNK):
        yield a[i:i + CHUNK], b[i:i + CHUNK]
