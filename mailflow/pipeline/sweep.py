"""Act on deadlines that are due: reminders, escalations, final alerts, confirmation chasers.

Cost grows with what is due, not with the number of cases: the query reads the indexed
(state, due_at) rows only. Each notice fires exactly once per (case, stage, step, action, due instant): the
ledger's unique key is claimed in the same transaction as the action, so a crash, a re-run or a
second worker finds it taken. On PostgreSQL, workers share the due rows with SKIP LOCKED.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mailflow.core.humanize import long_instant
from mailflow.core.lifecycle import State
from mailflow.db.models import Case, Deadline, LedgerEntry, OutboxMessage
from mailflow.pipeline import cases
from mailflow.pipeline.cases import Actor
from mailflow.pipeline.notices import business_team, notify, raisers, tier_people

if TYPE_CHECKING:
    from mailflow.app import PartnershipRuntime

log = logging.getLogger(__name__)

DEADLINE_ACTOR = Actor("deadline")


@dataclass
class Fired:
    reference: str
    stage: int
    step: str
    action: str
    due_at: datetime


@dataclass
class SweepResult:
    fired: list[Fired] = field(default_factory=list)
    skipped: int = 0
    queued: list[tuple[str, list[str]]] = field(default_factory=list)  # (subject, recipients), dry runs


def sweep(rt: PartnershipRuntime, now: datetime, dry_run: bool = False, limit: int = 10_000) -> SweepResult:
    """Everything due as of `now`. A dry run does the same work in one transaction, reports the
    mail it would queue, and rolls back."""
    result = SweepResult()
    db = rt.app.db
    if dry_run:
        session = db.session()
        try:
            with session.begin():
                first_outbox = session.scalar(select(OutboxMessage.id).order_by(OutboxMessage.id.desc()).limit(1)) or 0
                while len(result.fired) + result.skipped < limit and _one(session, rt, now, result, lock=False):
                    pass
                session.flush()
                for row in session.scalars(select(OutboxMessage).where(OutboxMessage.id > first_outbox)
                                           .order_by(OutboxMessage.id)):
                    result.queued.append((row.subject, list(row.recipients)))
                session.rollback()
        finally:
            session.close()
        return result
    while len(result.fired) + result.skipped < limit:
        with db.transaction() as s:
            if not _one(s, rt, now, result, lock=db.is_postgres):
                break
    return result


def _one(s: Session, rt: PartnershipRuntime, now: datetime, result: SweepResult, lock: bool) -> bool:
    stmt = (select(Deadline).join(Case, Deadline.case_id == Case.id)
            .where(Case.partnership == rt.prefix, Deadline.state == "pending", Deadline.due_at <= now)
            .order_by(Deadline.due_at, Deadline.id).limit(1))
    if lock:
        # Lock the case, not the deadline row, and skip cases another worker holds: every change
        # to a case's deadlines happens under its case lock, so two workers never wait on each
        # other in opposite orders (one holding a reminder row and waiting for the case, the
        # other holding the case and cancelling that reminder: a deadlock).
        stmt = stmt.with_for_update(skip_locked=True, of=Case)
    deadline = s.scalars(stmt).first()
    if deadline is None:
        return False
    case = s.get(Case, deadline.case_id, with_for_update=lock)
    assert case is not None
    if lock:
        s.refresh(deadline)   # a worker that held the case may have settled it since our snapshot
        if deadline.state != "pending":
            return True
    deadline.state, deadline.done_at = "done", now
    s.flush()
    applies = _still_applies(deadline, case) and not _stale_reminder(deadline, case, now)
    if not applies or not _claim(s, deadline, now):
        deadline.state = "cancelled" if not applies else "done"
        result.skipped += 1
        return True
    _act(s, rt, case, deadline, now)
    result.fired.append(Fired(case.reference, deadline.stage, deadline.step, deadline.action, deadline.due_at))
    log.info("%s: %s for stage %s %s (due %s)", case.reference, deadline.action, deadline.stage,
             deadline.step, deadline.due_at.isoformat())
    return True


def _still_applies(d: Deadline, case: Case) -> bool:
    if d.stage != case.stage:
        return False
    if d.step == "confirm":   # the chaser and its reminder: while written confirmation is awaited
        return case.state == State.RESOLVED
    return case.state == State.OPEN


def _stale_reminder(d: Deadline, case: Case, now: datetime) -> bool:
    """A reminder noticed only after the deadline it announces (the daemon was down): the
    deadline's own notice says more, so the reminder is dropped."""
    return d.action == "remind" and _due_of(case, d) <= now


def _claim(s: Session, d: Deadline, now: datetime) -> bool:
    """Take the ledger key; False when this notice has already fired."""
    insert = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = (insert(LedgerEntry)
            .values(case_id=d.case_id, stage=d.stage, step=d.step, kind=d.action, due_at=d.due_at, fired_at=now)
            .on_conflict_do_nothing(index_elements=["case_id", "stage", "step", "kind", "due_at"])
            .returning(LedgerEntry.id))
    return s.execute(stmt).scalar() is not None


def _act(s: Session, rt: PartnershipRuntime, case: Case, d: Deadline, now: datetime) -> None:
    reason = f"the Stage {d.stage} {d.step} deadline ({long_instant(d.due_at)}) passed without a resolution"
    match d.action:
        case "remind" | "overdue":
            notify(s, rt, case, "reminder", now, to=tier_people(rt, case, case.stage) or business_team(rt),
                   cc=raisers(case), step=d.step, due=d.due_at if d.action == "overdue" else _due_of(case, d),
                   overdue=d.action == "overdue")
        case "escalate":
            cases.escalate(s, rt, case, DEADLINE_ACTOR, now, reason, clock_start=d.due_at, automatic=True)
        case "final_alert":
            cases.final_alert(s, rt, case, DEADLINE_ACTOR, now, reason)
        case "chase":
            notify(s, rt, case, "confirmation_request", now,
                   to=[*tier_people(rt, case, case.stage), *raisers(case)], cc=business_team(rt), late=True)
            cases.note(s, case, DEADLINE_ACTOR, now, "written confirmation is late: chased")


def _due_of(case: Case, reminder: Deadline) -> datetime:
    """The deadline a reminder is about."""
    for d in case.deadlines:
        if d.state == "pending" and d.stage == reminder.stage and d.step == reminder.step and d.action != "remind":
            return d.due_at
    return reminder.due_at
