"""Act on deadlines that are due: reminders, escalations, final alerts, confirmation chasers and
hand-overs, holds of cases nobody can be reached for, and the catch-up after downtime.

Cost grows with what is due, not with the number of cases: the query reads the indexed
(state, due_at) rows only. Each notice fires exactly once per (case, stage, step, action, due instant): the
ledger's unique key is claimed in the same transaction as the action, so a crash, a re-run or a
second worker finds it taken. On PostgreSQL, workers share the due rows with SKIP LOCKED.

Catch-up: a case with deadlines that fell due at different instants all found due in one pass,
the first more than LATE_AFTER ago (the daemon was down while they fell due; on time each is
acted on at its instant, and each next one is only scheduled by the one before), has them all
applied in order in one transaction, each claiming its own ledger key, and sends one notice per
recipient that says so (`_catch_up`). A single deadline noticed late is acted on as usual: its
notice names the deadline that passed.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, inspect, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import instance_state

from mailflow.core.humanize import long_instant
from mailflow.core.lifecycle import State
from mailflow.db.bounds import fit_row
from mailflow.db.models import Case, Deadline, LedgerEntry, OutboxMessage
from mailflow.db.store import record_event
from mailflow.pipeline import cases, ledger, stalls
from mailflow.pipeline.cases import Actor
from mailflow.pipeline.deadline_rows import schedule_handover
from mailflow.pipeline.notices import STEP_LABELS, business_team, notify, raisers, tier_people
from mailflow.pipeline.outbox import (
    COMPOSE_WHEN_SENT,
    forget_thread_root,
    forget_thread_roots,
    preload_thread_roots,
)

if TYPE_CHECKING:
    from mailflow.app import PartnershipRuntime

log = logging.getLogger(__name__)

DEADLINE_ACTOR = Actor("deadline")
MAX_CHAIN = 100   # deadlines of one case settled in one transaction (a guard: a case has a handful)
BATCH = 250       # due deadlines claimed (with their cases) per transaction
LEDGER_KEYS = "mailflow.sweep.ledger_keys"   # session.info: the ledger keys a batch's cases hold
LATE_AFTER = timedelta(minutes=15)   # a deadline noticed later than this after it fell due was missed


@dataclass
class Fired:
    reference: str
    stage: int
    step: str
    action: str
    due_at: datetime
    done: str = ""   # what was done, for a person ("held at Stage 1: nobody to route to; ...")


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
                while len(result.fired) + result.skipped < limit and _batch(session, rt, now, result, lock=False,
                                                                           size=BATCH):
                    pass
                session.flush()
                for row in session.scalars(select(OutboxMessage).where(OutboxMessage.id > first_outbox)
                                           .order_by(OutboxMessage.id)):
                    result.queued.append((row.subject, list(row.recipients)))
                session.rollback()
        finally:
            session.close()
        return result
    size = BATCH
    while len(result.fired) + result.skipped < limit:
        done = len(result.fired), result.skipped
        try:
            with db.transaction() as s:
                if not _batch(s, rt, now, result, lock=db.is_postgres,
                              size=min(size, limit - len(result.fired) - result.skipped)):
                    break
        except Exception:
            if size == 1:
                raise
            # One case's failure undid its whole batch: the batch again, a case per transaction,
            # so the cases before the failing one are settled (and it fails alone).
            del result.fired[done[0]:]
            result.skipped = done[1]
            size = 1
    return result


def _batch(s: Session, rt: PartnershipRuntime, now: datetime, result: SweepResult, lock: bool, size: int) -> bool:
    """The earliest `size` due deadlines, claimed with their cases; then, case by case in that
    order, each case's due deadlines, in order, in this one transaction (see `_catch_up`). What
    the batch needs is loaded in a few queries: the cases with their participants and deadlines,
    and their thread roots. Notices without attachments are queued rendered but not composed
    (the sender composes them: `outbox.materialise`); the ledger keys and outbox rows the batch
    adds are written at its end, one executemany per table (`insert_queued`). False when nothing
    is due (or every due case is held elsewhere)."""
    stmt = (select(Deadline.id, Deadline.case_id).join(Case, Deadline.case_id == Case.id)
            .where(Case.partnership == rt.prefix, Deadline.state == "pending", Deadline.due_at <= now)
            .order_by(Deadline.state, Deadline.due_at, Deadline.id).limit(max(size, 1)))
    if lock:
        # Lock the cases, not the deadline rows, and skip cases another worker holds: every
        # change to a case's deadlines happens under its case lock, so two workers never wait on
        # each other in opposite orders (one holding a reminder row and waiting for the case, the
        # other holding the case and cancelling that reminder: a deadlock).
        stmt = stmt.with_for_update(skip_locked=True, of=Case)
    claimed = [(row[0], row[1]) for row in s.execute(stmt)]
    if not claimed:
        return False
    case_ids = list(dict.fromkeys(case_id for _, case_id in claimed))
    # Read after the lock, in a statement of its own: a worker that held a case may have settled
    # its deadlines since the claim's snapshot.
    loaded = {c.id: c for c in s.scalars(select(Case).where(Case.id.in_(case_ids))
                                         .options(selectinload(Case.participants), selectinload(Case.deadlines)))}
    first_outbox = s.scalar(select(func.max(OutboxMessage.id))) or 0
    preload_thread_roots(s, case_ids)
    s.info[LEDGER_KEYS] = ledger.keys_of(s, case_ids)
    s.info[COMPOSE_WHEN_SENT] = True   # notices are rendered here, composed by the sender
    try:
        for case_id in case_ids:
            _settle_case(s, rt, loaded[case_id], now, result, first_outbox)
        insert_queued(s)
        s.flush()
    finally:
        forget_thread_roots(s)
        s.info.pop(COMPOSE_WHEN_SENT, None)
        s.info.pop(LEDGER_KEYS, None)
    return True


BULK_MODELS = (LedgerEntry, OutboxMessage)   # rows a batch adds and nobody reads back as objects


def insert_queued(s: Session) -> None:
    """Write the ledger keys and outbox rows the batch has added (and not yet flushed) with one
    executemany per table, in the order they were added, instead of the unit of work's INSERT ...
    RETURNING of every row (whose ids nobody here needs; on PostgreSQL its statement of thousands
    of placeholders cost more to build than to run). They are fitted to their columns as a flush
    would (`bounds.fit_row`) and leave the session: the sweep keeps no reference to them."""
    new: list[LedgerEntry | OutboxMessage] = [obj for obj in s.new if isinstance(obj, BULK_MODELS)]
    queued = sorted(new, key=lambda obj: instance_state(obj).insert_order or 0)
    rows: dict[type[Any], list[dict[str, Any]]] = {model: [] for model in BULK_MODELS}
    for obj in queued:
        fit_row(obj)
        values = instance_state(obj).dict
        rows[type(obj)].append({column.key: values[key] if key in values else _default(column)
                                for key, column in _insert_columns(type(obj))})
        s.expunge(obj)
    with s.no_autoflush:
        for model, values_list in rows.items():
            if values_list:
                s.execute(insert(model.__table__), values_list)


@functools.cache
def _insert_columns(model: type[Any]) -> list[tuple[str, Any]]:
    """(attribute key, column) of the model's columns but its generated primary key."""
    return [(attr.key, attr.columns[0]) for attr in inspect(model).column_attrs if not attr.columns[0].primary_key]


def _default(column: Any) -> Any:
    """What the INSERT would store for a column the row leaves unset: its scalar default, else NULL."""
    default = column.default
    if default is None:
        return None
    if not default.is_scalar:
        raise ValueError(f"{column}: only scalar defaults are filled in for a bulk insert")
    return default.arg


def _settle_case(s: Session, rt: PartnershipRuntime, case: Case, now: datetime, result: SweepResult,
                 first_outbox: int) -> None:
    """Every deadline of the case due by `now`, earliest first (one may schedule or cancel others)."""
    acted: list[tuple[Deadline, str]] = []
    for _ in range(MAX_CHAIN):
        deadline = _next_due(s, case, now)
        if deadline is None:
            break
        what = _apply(s, rt, case, deadline, now, result)
        if what is not None:
            acted.append((deadline, what))
    if _caught_up_late(acted, now):
        _catch_up(s, rt, case, acted, first_outbox, now)


def _next_due(s: Session, case: Case, now: datetime) -> Deadline | None:
    """The case's earliest pending deadline due by `now` (by due time, then id), from its loaded
    deadlines: an action that rewrites them (`cancel_pending`) expires the collection, and rows it
    adds get their ids here. (The collection holds the rows added for the case since it was loaded;
    reloading an expired one autoflushes them. Scanning `s.new` instead cost a batch's every new
    row per call.)"""
    deadlines = case.deadlines
    if any(d.id is None for d in deadlines):
        s.flush()
    due = [d for d in deadlines if d.state == "pending" and d.due_at <= now]
    return min(due, key=lambda d: (d.due_at, d.id)) if due else None


def _caught_up_late(acted: list[tuple[Deadline, str]], now: datetime) -> bool:
    """Deadlines of one case that fell due at different instants were all found due in one pass,
    and the first of them more than LATE_AFTER ago: the service was not running in between. (Two
    deadlines a policy puts at the same instant, e.g. "respond" and "resolve" both within one
    working day, are on time together; a pass running a few minutes behind is not downtime.)"""
    return len({d.due_at for d, _ in acted}) > 1 and now - min(d.due_at for d, _ in acted) > LATE_AFTER


def _apply(s: Session, rt: PartnershipRuntime, case: Case, deadline: Deadline, now: datetime,
           result: SweepResult) -> str | None:
    """Settle one due deadline: act on it (what was done, for a person) or skip it (None)."""
    deadline.state, deadline.done_at = "done", now
    applies = _still_applies(deadline, case) and not _stale_reminder(deadline, case, now)
    if not applies or not _claim(s, deadline, now):
        deadline.state = "cancelled" if not applies else "done"
        result.skipped += 1
        return None
    what = _act(s, rt, case, deadline, now)
    result.fired.append(Fired(case.reference, deadline.stage, deadline.step, deadline.action, deadline.due_at,
                              what))
    log.info("%s: %s for stage %s %s (due %s)", case.reference, deadline.action, deadline.stage,
             deadline.step, deadline.due_at.isoformat())
    return what


def _still_applies(d: Deadline, case: Case) -> bool:
    if d.stage != case.stage:
        return False
    if d.step == "confirm":   # the chaser, its reminder and the hand-over: while confirmation is awaited
        return case.state == State.RESOLVED
    return case.state == State.OPEN


def _stale_reminder(d: Deadline, case: Case, now: datetime) -> bool:
    """A reminder noticed only after the deadline it announces (the daemon was down): the
    deadline's own notice says more, so the reminder is dropped."""
    return d.action == "remind" and _due_of(case, d) <= now


def _claim(s: Session, d: Deadline, now: datetime) -> bool:
    """Take the ledger key; False when this notice has already fired.

    In a batch the keys its cases hold were read once when the batch began (`_batch`), under
    the case locks: every ledger claim is made under its case's lock (SQLite: one writer), so
    nobody else can take a key of these cases meanwhile, and the key is added with the batch's
    other rows at its end (the unique key is still the last word: a duplicate undoes the batch)."""
    taken: set[tuple[Any, ...]] | None = s.info.get(LEDGER_KEYS)
    if taken is None:
        return ledger.claim(s, d.case_id, d.stage, d.step, d.action, d.due_at, now)
    key = ledger.key(d.case_id, d.stage, d.step, d.action, d.due_at)
    if key in taken:
        return False
    taken.add(key)
    s.add(LedgerEntry(case_id=d.case_id, stage=d.stage, step=d.step, kind=d.action, due_at=d.due_at, fired_at=now))
    return True


def _act(s: Session, rt: PartnershipRuntime, case: Case, d: Deadline, now: datetime) -> str:
    reason = f"the Stage {d.stage} {d.step} deadline ({long_instant(d.due_at)}) passed without a resolution"
    match d.action:
        case "remind" | "overdue":
            notify(s, rt, case, "reminder", now, to=tier_people(rt, case, case.stage) or business_team(rt),
                   cc=raisers(case), step=d.step, due=d.due_at if d.action == "overdue" else _due_of(case, d),
                   overdue=d.action == "overdue")
            return "the acting side reminded" if d.action == "remind" else "overdue: the acting side reminded"
        case "escalate":
            if cases.escalate_or_hold(s, rt, case, DEADLINE_ACTOR, now, reason, clock_start=d.due_at):
                return f"escalated from Stage {d.stage} to Stage {case.stage}"
            return f"held at Stage {d.stage}: {stalls.NOBODY_TO_ROUTE_TO}; the business team asked to route it"
        case "final_alert":
            if cases.final_alert(s, rt, case, DEADLINE_ACTOR, now, reason):
                return "the final alert given to the business team and the chair"
            return "the final alert had already been given"
        case "chase":
            notify(s, rt, case, "confirmation_request", now,
                   to=[*tier_people(rt, case, case.stage), *raisers(case)], cc=business_team(rt), late=True)
            cases.note(s, case, DEADLINE_ACTOR, now, "written confirmation is late: chased")
            schedule_handover(s, rt.policy, case, d.due_at, now)
            return "written confirmation chased"
        case "hand_over":
            cases.hand_over_confirmation(s, rt, case, DEADLINE_ACTOR, now)
            return f"written confirmation still missing: {stalls.HANDED_OVER}"
    raise ValueError(f"unknown deadline action {d.action!r}")


def _catch_up(s: Session, rt: PartnershipRuntime, case: Case, acted: list[tuple[Deadline, str]],
              first_outbox: int, now: datetime) -> None:
    """More than one deadline of a case was due at once: the service was not running when they
    fell due (on time, each is acted on when it falls due, alone). The case has been moved
    where the policy puts it now, each deadline's ledger key claimed in order; the notices each
    step queued on the way would tell a story in the past tense as if it were news ("resolution
    due Thu 24 Dec" on 29 Dec, then the next stage's in the same breath), so in this same
    transaction they give way to one notice per recipient that says what happened: which
    deadlines passed while the service was down, where the case is now and what is due next;
    and one to the business team."""
    s.flush()
    # This transaction holds the case: its outbox rows after the batch began are this pass's.
    superseded = s.scalars(select(OutboxMessage).where(OutboxMessage.case_id == case.id,
                                                       OutboxMessage.id > first_outbox)
                           .order_by(OutboxMessage.id)).all()
    addresses = list(dict.fromkeys(a for r in superseded for a in r.recipients))
    kinds = [r.kind for r in superseded]
    for row in superseded:
        s.delete(row)
    s.flush()
    forget_thread_root(s, case.id)   # a deleted row may have been the case's first
    team = {a.lower() for a in business_team(rt)}
    people = [a for a in addresses if a.lower() not in team]
    current = {a.lower() for a in tier_people(rt, case, case.stage)}
    to = [a for a in people if a.lower() in current] or people
    cc = [a for a in people if a not in to]
    passed: list[dict[str, Any]] = [
        {"stage": d.stage, "step": d.step, "step_label": STEP_LABELS.get(d.step, d.step.title()),
         "action": d.action, "due": d.due_at, "what": what} for d, what in acted if d.action != "remind"]
    stall = stalls.stall_of(rt, case)
    context: dict[str, Any] = {"passed": passed, "from_stage": acted[0][0].stage, "noticed": now,
                               "stall": stall.label if stall else None}
    record_event(s, now, DEADLINE_ACTOR.address, "caught_up", case=case, from_stage=acted[0][0].stage,
                 to_stage=case.stage, state=case.state,
                 passed=[{"stage": p["stage"], "step": p["step"], "action": p["action"],
                          "due": p["due"].isoformat(), "done": p["what"]} for p in passed],
                 superseded=kinds, told=len(people))
    if people:
        notify(s, rt, case, "catch_up", now, to=to, cc=cc, business=False, **context)
    notify(s, rt, case, "catch_up", now, to=business_team(rt), business=True, **context)


def _due_of(case: Case, reminder: Deadline) -> datetime:
    """The deadline a reminder is about."""
    for d in case.deadlines:
        if d.state == "pending" and d.stage == reminder.stage and d.step == reminder.step and d.action != "remind":
            return d.due_at
    return reminder.due_at
