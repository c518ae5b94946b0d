"""The audit trail: one append function, the seal that chains events as their transaction
commits, reads of personal data recorded as events, and the chain's check.

Every event is written by `append_event` (`mailflow.db.store.record_event` is the same function).
It is sealed -- given its partnership's next sequence number, the previous event's hash and its
own (`mailflow.core.audit_chain`) -- just before the outermost transaction commits, so the
per-partnership chain head is locked for the shortest time and always last: a worker holding the
head holds no other lock it has yet to take, so two workers never deadlock on it. On PostgreSQL
the head's UPDATE keeps its row locked until COMMIT, which serialises appends per partnership
across workers; SQLite serialises writers already (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import getpass
import os
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import func, inspect, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from mailflow.core import audit_chain
from mailflow.core.audit_chain import ChainedEvent, Problem, Verdict
from mailflow.db.bounds import fit_json
from mailflow.db.models import AuditHead, Case, Event, InboundMessage

EVENT_DETAIL_CHARS = 2000
UNSEALED = "mailflow.audit.unsealed"
VIEWED = "viewed"     # a read of a case's (or a message's) personal data
PURGED = "purged"     # retention erased events' content; its detail counts them


def append_event(session: Session, at: datetime, actor: str, action: str, case: Case | None = None,
                 inbound: InboundMessage | None = None, partnership: str | None = None,
                 **detail: Any) -> Event:
    """Append an audit event; its detail strings are cut to a bounded length (they may come from
    a message). The partnership's chain is the case's, else the message's, else `partnership`."""
    owner = partnership or (case.partnership if case is not None else None) or \
        (inbound.partnership if inbound is not None else None)
    if not owner:
        raise ValueError(f"audit event {action!r}: no partnership (give a case, a message or the partnership)")
    event = Event(partnership=owner, case=case, at=at, actor=actor, action=action,
                  detail=fit_json(detail, EVENT_DETAIL_CHARS),
                  inbound_id=inbound.id if inbound is not None else None)
    session.add(event)
    return event


def reader(by: str | None = None) -> str:
    """Who is reading through the command line: `--by NAME`, else the operating-system user."""
    if by:
        return f"cli:{by}"
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):   # no passwd entry (a container's arbitrary uid)
        return f"cli:uid {os.getuid()}"


def record_read(session: Session, at: datetime, who: str, what: str, case: Case | None = None,
                inbound: InboundMessage | None = None) -> Event:
    """A read of personal data (a case shown or exported, a quarantined message shown) is itself an
    audit event. `what` says how (`cases show`, `export-case`, `quarantine show`, a web page)."""
    return append_event(session, at, who, VIEWED, case=case, inbound=inbound, via=what)


# ---------------------------------------------------------------------------------- the seal

def seal_on_commit(factory: sessionmaker[Session]) -> None:
    """Every session the factory makes chains its new events as its outermost transaction commits."""
    sa_event.listen(factory, "after_attach", _note_new_event)
    sa_event.listen(factory, "before_commit", _seal)


def _note_new_event(session: Session, obj: Any) -> None:
    if isinstance(obj, Event) and obj.seq is None:
        session.info.setdefault(UNSEALED, []).append(obj)


def _seal(session: Session) -> None:
    if session.in_nested_transaction() or not session.info.get(UNSEALED):
        return
    session.flush()
    noted: list[Event] = session.info.pop(UNSEALED)
    # Events of a rolled-back savepoint are no longer persistent: they were never written.
    events = sorted({id(e): e for e in noted if inspect(e).persistent and e.seq is None}.values(),
                    key=lambda e: e.id)
    by_partnership: dict[str, list[Event]] = {}
    for e in events:
        by_partnership.setdefault(e.partnership, []).append(e)
    for partnership in sorted(by_partnership):   # one order for every worker
        seal(session, partnership, by_partnership[partnership])
    session.flush()


def seal(session: Session, partnership: str, events: list[Event]) -> None:
    """Chain `events` (flushed, in order) after the partnership's head, advancing the head."""
    last_seq, prev = _advance_head(session, partnership, len(events))
    seq = last_seq - len(events)
    refs = _case_refs(session, events)
    for e in events:
        seq += 1
        e.seq = seq
        e.prev_hash = prev
        e.content_hash = audit_chain.content_hash(e.actor, refs.get(e.case_id), e.inbound_id, e.detail)
        e.hash = prev = audit_chain.event_hash(partnership, seq, e.prev_hash, e.at, e.action, e.content_hash)
    session.execute(update(AuditHead).where(AuditHead.partnership == partnership).values(hash=prev))


def _advance_head(session: Session, partnership: str, n: int) -> tuple[int, str]:
    """Reserve n sequence numbers: (the new last seq, the hash before them). The UPDATE takes the
    head row's lock (PostgreSQL), held until this transaction ends."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = (insert(AuditHead).values(partnership=partnership, seq=n, hash=audit_chain.GENESIS)
            .on_conflict_do_update(index_elements=[AuditHead.partnership], set_={"seq": AuditHead.seq + n})
            .returning(AuditHead.seq, AuditHead.hash))
    last_seq, prev = session.execute(stmt).one()
    return int(last_seq), str(prev)


def _case_refs(session: Session, events: list[Event]) -> dict[int | None, str]:
    refs: dict[int | None, str] = {}
    for e in events:
        if e.case_id is not None and e.case_id not in refs:
            case = e.case if e.case is not None else session.get(Case, e.case_id)
            if case is not None:
                refs[e.case_id] = case.reference
    return refs


# ---------------------------------------------------------------------------------- checking

def partnerships(session: Session) -> list[str]:
    stored = set(session.scalars(select(Event.partnership).distinct()))
    stored |= set(session.scalars(select(AuditHead.partnership)))
    return sorted(stored)


def verify(session: Session, partnership: str) -> Verdict:
    """Check one partnership's chain in the database (streamed, any length)."""
    head_row = session.get(AuditHead, partnership)
    head = (int(head_row.seq), head_row.hash) if head_row is not None else None
    verdict = audit_chain.verify(partnership, _chained(session, partnership), head)
    problems = verdict.problems if verdict.problems is not None else []
    problems.extend(_erasures_accounted(session, partnership))
    verdict.problems = problems
    return verdict


def _chained(session: Session, partnership: str) -> Iterator[ChainedEvent]:
    stmt = (select(Event.id, Event.seq, Event.at, Event.action, Event.actor, Case.reference,
                   Event.inbound_id, Event.detail, Event.prev_hash, Event.content_hash, Event.hash,
                   Event.erased_by)
            .outerjoin(Case, Case.id == Event.case_id)
            .where(Event.partnership == partnership)
            .order_by(Event.seq.asc().nulls_last(), Event.id)
            .execution_options(yield_per=5000))
    for row in session.execute(stmt):
        yield ChainedEvent(id=row.id, seq=row.seq, partnership=partnership, at=row.at, action=row.action,
                           actor=row.actor, case_ref=row.reference, inbound_id=row.inbound_id,
                           detail=row.detail, prev_hash=row.prev_hash, content_hash=row.content_hash,
                           hash=row.hash, erased_by=row.erased_by)


def _erasures_accounted(session: Session, partnership: str) -> list[Problem]:
    """Every erased event was erased by a purge event that counts it: content wiped by hand (to
    hide an edit) does not pass for retention."""
    rows = session.execute(select(Event.erased_by, func.count())
                           .where(Event.partnership == partnership, Event.erased_by.is_not(None))
                           .group_by(Event.erased_by)).all()
    counts = Counter({int(purge_id): int(n) for purge_id, n in rows if purge_id is not None})
    problems: list[Problem] = []
    for purge_id, n in sorted(counts.items()):
        purge = session.get(Event, purge_id)
        claimed = purge.detail.get("events_erased") if purge is not None and purge.action == PURGED \
            and purge.partnership == partnership else None
        if claimed != n:
            first = session.scalars(select(Event).where(Event.erased_by == purge_id).order_by(Event.seq)
                                    .limit(1)).first()
            says = f"counts {claimed}" if claimed is not None else "is not a purge of this partnership"
            problems.append(Problem(first.id if first else None, first.seq if first else None,
                                    f"{n} event(s) erased without a purge that accounts for them "
                                    f"(event #{purge_id} {says})"))
    return problems
