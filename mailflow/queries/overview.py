"""The partnership at a glance: the read model behind the business team's digest and the web
console's dashboard. Aggregates are computed by the database; lists come back capped (`Capped`:
the first `limit` items and the full count, for "and N more"), and only the columns they need
are read, so a partnership with 10^5 cases is summarised in well under a second.

Cases are named by reference, stage and agency only: nothing here carries an adult's details.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Generic, TypeVar

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session, selectinload

from mailflow.core.calendar import WorkingCalendar
from mailflow.core.lifecycle import State
from mailflow.db.models import Case, Deadline, Event, InboundMessage, OutboxMessage, ScheduleClaim
from mailflow.db.snapshot import on_one_snapshot

if TYPE_CHECKING:
    from mailflow.app import PartnershipRuntime

T = TypeVar("T")

LIVE = (State.OPEN.value, State.RESOLVED.value)
# Ages of open cases (from when each was opened), for the chart and the dashboard.
AGE_BANDS: tuple[tuple[str, int | None], ...] = (
    ("under 1 week", 7), ("1-2 weeks", 14), ("2-4 weeks", 28), ("over 4 weeks", None))
TO_CHECK = ("unverified_reply", "bounced", "extension_refused", "needs_routing")
NOT_IDENTIFIED = "(agency not identified)"


@dataclass(frozen=True)
class Capped(Generic[T]):
    """The first items of a list and how many there are in all."""

    items: tuple[T, ...]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.items)

    def __bool__(self) -> bool:
        return self.total > 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.items)


@dataclass(frozen=True)
class StageCount:
    stage: int
    open: int
    urgent: int


@dataclass(frozen=True)
class AgencyCount:
    agency: str
    raised: int      # live cases this agency raised
    received: int    # live cases raised with this agency

    @property
    def total(self) -> int:
        return self.raised + self.received


@dataclass(frozen=True)
class OverdueCase:
    reference: str
    stage: int
    state: str
    step: str
    action: str
    due_at: datetime
    overdue_by: timedelta
    working_days: int     # working days since it fell due


@dataclass(frozen=True)
class DueCase:
    reference: str
    stage: int
    step: str
    action: str
    due_at: datetime


@dataclass(frozen=True)
class NewCase:
    reference: str
    state: str
    stage: int
    urgent: bool
    opened_at: datetime
    raised_by: str | None
    raised_with: str | None


@dataclass(frozen=True)
class ResolvedCase:
    reference: str
    stage: int
    state: str
    resolved_at: datetime
    took: timedelta
    working_days: int


@dataclass(frozen=True)
class AwaitingConfirmation:
    reference: str
    stage: int
    resolved_at: datetime
    handed_over: bool   # chased and still not confirmed: the business team holds it


@dataclass(frozen=True)
class StalledCase:
    reference: str
    stage: int
    kind: str
    label: str
    since: datetime


@dataclass(frozen=True)
class CheckEvent:
    reference: str
    what: str
    at: datetime
    detail: str


@dataclass(frozen=True)
class WatchdogWarning:
    code: str
    message: str
    since: datetime | None


@dataclass(frozen=True)
class Overview:
    partnership: str
    at: datetime
    since: datetime                       # "new" and "resolved" count from here (the last digest)
    by_state: dict[str, int]
    by_stage: tuple[StageCount, ...]
    by_agency: Capped[AgencyCount]
    age_bands: tuple[str, ...]
    age_by_stage: dict[int, tuple[int, ...]]   # stage -> open cases per age band
    overdue: Capped[OverdueCase]
    due_soon: Capped[DueCase]
    due_until: datetime
    new: Capped[NewCase]
    resolved: Capped[ResolvedCase]
    awaiting_confirmation: Capped[AwaitingConfirmation]
    stalled: Capped[StalledCase]
    to_check: Capped[CheckEvent]
    quarantined_waiting: int              # messages held in quarantine, not yet released or discarded
    quarantined_new: int                  # of which quarantined since `since`
    unverified_new: int                   # replies kept as unverified notes since `since`
    failed_mail: int                      # outgoing mail failed or bounced since `since`
    watchdog: tuple[WatchdogWarning, ...] = field(default_factory=tuple)

    @property
    def open_total(self) -> int:
        return self.by_state.get(State.OPEN.value, 0)

    @property
    def urgent_total(self) -> int:
        return sum(s.urgent for s in self.by_stage)


def overview(s: Session, rt: PartnershipRuntime, now: datetime, since: datetime, limit: int = 15) -> Overview:
    """The partnership `rt` as of `now`; "new", "resolved" and the checks count from `since`."""
    p = rt.prefix
    cal = rt.policy.calendar
    due_until = cal.add_working_days(now, 2).at
    # Two halves of about the same cost, read side by side from one snapshot on PostgreSQL
    # (mailflow/db/snapshot.py): what is due and who is involved; the counts and the short lists.
    (overdue, by_agency, due_soon), (by_state, (by_stage, age_by_stage), rest) = on_one_snapshot(s, (
        lambda c: (_overdue(c, p, now, cal, limit), _by_agency(c, p, limit), _due_soon(c, p, now, due_until, limit)),
        lambda c: (_by_state(c, p), _open_by_stage(c, p, now), _counts_and_lists(c, rt, since, cal, limit)),
    ), name="overview")
    return Overview(
        partnership=p, at=now, since=since,
        by_state=by_state,
        by_stage=by_stage,
        by_agency=by_agency,
        age_bands=tuple(label for label, _ in AGE_BANDS),
        age_by_stage=age_by_stage,
        overdue=overdue,
        due_soon=due_soon, due_until=due_until,
        watchdog=watchdog_warnings(s, p),
        **rest,
    )


def _counts_and_lists(s: Session, rt: PartnershipRuntime, since: datetime, cal: WorkingCalendar,
                      limit: int) -> dict[str, object]:
    p = rt.prefix
    return {
        "new": _new(s, p, since, limit),
        "resolved": _resolved(s, p, since, cal, limit),
        "awaiting_confirmation": _awaiting_confirmation(s, p, limit),
        "stalled": _stalled(s, rt, limit),
        "to_check": _to_check(s, p, since, limit),
        "quarantined_waiting": _count(s, select(func.count(InboundMessage.id)).where(
            InboundMessage.partnership == p, InboundMessage.outcome == "quarantined")),
        "quarantined_new": _count(s, select(func.count(InboundMessage.id)).where(
            InboundMessage.partnership == p, InboundMessage.outcome == "quarantined",
            InboundMessage.received_at > since)),
        "unverified_new": _count(s, select(func.count(Event.id)).join(Case, Event.case_id == Case.id).where(
            Case.partnership == p, Event.action == "unverified_reply", Event.at > since)),
        "failed_mail": _count(s, select(func.count(OutboxMessage.id)).where(
            OutboxMessage.partnership == p, OutboxMessage.state.in_(("failed", "bounced")),
            OutboxMessage.created_at > since)),
    }


def working_days_between(cal: WorkingCalendar, start: datetime, end: datetime) -> int:
    """Working days after `start`'s day up to and including `end`'s day (UK local dates)."""
    first, last = cal.local(start).date(), cal.local(end).date()
    n, day = 0, first
    while day < last:
        day = date.fromordinal(day.toordinal() + 1)
        n += cal.is_working_day(day)
    return n


def watchdog_warnings(s: Session, partnership: str) -> tuple[WatchdogWarning, ...]:
    """The problems the watchdog last recorded for the partnership (none: healthy or never checked)."""
    row = s.scalars(select(ScheduleClaim).where(ScheduleClaim.partnership == partnership,
                                                ScheduleClaim.kind == "watchdog")
                    .order_by(ScheduleClaim.due_at.desc(), ScheduleClaim.id.desc()).limit(1)).first()
    if row is None:
        return ()
    return tuple(WatchdogWarning(p.get("code", ""), p.get("message", ""),
                                 datetime.fromisoformat(p["since"]) if p.get("since") else None)
                 for p in row.detail.get("problems", []))


# ---------------------------------------------------------------------------- the queries

def _count(s: Session, stmt) -> int:  # type: ignore[no-untyped-def]
    return int(s.scalar(stmt) or 0)


def _aware(at: datetime) -> datetime:
    from datetime import UTC

    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)   # SQLite's aggregates lose the zone


def _by_state(s: Session, p: str) -> dict[str, int]:
    # count(*), not count(id): the (partnership, state, ...) index answers it alone (index-only scan)
    rows = s.execute(select(Case.state, func.count()).where(Case.partnership == p).group_by(Case.state))
    return {state: n for state, n in rows}


def _open_by_stage(s: Session, p: str, now: datetime) -> tuple[tuple[StageCount, ...], dict[int, tuple[int, ...]]]:
    """Open cases per stage (with the urgent ones) and per stage and age band: one pass over the
    (partnership, state, stage, urgent, opened_at) index, nothing read from the table."""
    whens = [(Case.opened_at > now - timedelta(days=days), i)
             for i, (_, days) in enumerate(AGE_BANDS) if days is not None]
    band = case(*whens, else_=len(AGE_BANDS) - 1)
    rows = s.execute(select(Case.stage, band, Case.urgent, func.count())
                     .where(Case.partnership == p, Case.state == State.OPEN.value)
                     .group_by(Case.stage, band, Case.urgent))
    ages: dict[int, list[int]] = {}
    urgent: dict[int, int] = {}
    for stage, i, is_urgent, n in rows:
        ages.setdefault(stage, [0] * len(AGE_BANDS))[int(i)] += n
        urgent[stage] = urgent.get(stage, 0) + (n if is_urgent else 0)
    by_stage = tuple(StageCount(stage, sum(ages[stage]), urgent[stage]) for stage in sorted(ages))
    return by_stage, {stage: tuple(counts) for stage, counts in sorted(ages.items())}


def _by_agency(s: Session, p: str, limit: int) -> Capped[AgencyCount]:
    """Live cases per agency: raised by it (the first agency named on the raising side) and raised
    with it (the first on the other side); a case with none named on a side is counted under
    "(agency not identified)", so each column adds up to the live cases. Two ranges of the
    (partnership, state, agency) indexes, nothing read from the table."""
    counts: dict[str, list[int]] = {}
    for i, column in enumerate((Case.raising_agency, Case.receiving_agency)):
        for name, n in s.execute(select(column, func.count()).where(Case.partnership == p, Case.state.in_(LIVE))
                                 .group_by(column)):
            counts.setdefault(name or NOT_IDENTIFIED, [0, 0])[i] += n
    ordered = sorted((AgencyCount(a, r, w) for a, (r, w) in counts.items()), key=lambda c: (-c.total, c.agency))
    return Capped(tuple(ordered[:limit]), len(ordered))


def _overdue_filter(p: str, now: datetime):  # type: ignore[no-untyped-def]
    """A live case's deadline of its current stage (since the stage started; for a resolved case,
    since the resolution) whose time has passed: not yet acted on, or acted on (a chase, an
    overdue notice, a final alert, a hold) without the case moving on."""
    start = case((Case.state == State.RESOLVED.value, Case.resolved_at), else_=Case.stage_started_at)
    return and_(Case.partnership == p, Case.state.in_(LIVE), Deadline.case_id == Case.id,
                # `|| ''`: through the case's own deadlines (index on case_id), never a range of the
                # (state, due) index, which holds every deadline ever done
                Deadline.stage == Case.stage, Deadline.state.concat("").in_(("pending", "done")),
                Deadline.action != "remind", Deadline.due_at <= now, Deadline.due_at >= start)


def _overdue(s: Session, p: str, now: datetime, cal: WorkingCalendar, limit: int) -> Capped[OverdueCase]:
    # Per overdue case its first overdue deadline, found through the live cases' own deadlines
    # (the done deadlines of every closed case are never read); the database counts them and
    # hands back the first few in order (15,000 overdue cases at 10^5: not read into Python);
    # the details for those few only.
    firsts = (select(Case.id.label("id"), func.min(Deadline.due_at).label("due"))
              .join(Deadline, Deadline.case_id == Case.id).where(_overdue_filter(p, now))
              .group_by(Case.id).subquery())
    rows = s.execute(select(firsts.c.id, firsts.c.due, func.count().over())
                     .order_by(firsts.c.due, firsts.c.id).limit(limit)).all()
    total = int(rows[0][2]) if rows else 0
    first = [(_aware(due), cid) for cid, due, _ in rows]
    if not first:
        return Capped((), total)
    ids = [cid for _, cid in first]
    cases = {c.id: c for c in s.execute(select(Case.id, Case.reference, Case.stage, Case.state)
                                        .where(Case.id.in_(ids)))}
    steps: dict[int, tuple[str, str]] = {}
    for cid, step, action in s.execute(select(Deadline.case_id, Deadline.step, Deadline.action)
                                       .join(Case, Deadline.case_id == Case.id)
                                       .where(_overdue_filter(p, now), Deadline.case_id.in_(ids))
                                       .order_by(Deadline.due_at, Deadline.id)):
        steps.setdefault(cid, (step, action))
    items = []
    for due, cid in first:
        c = cases[cid]
        step, action = steps[cid]
        items.append(OverdueCase(c.reference, c.stage, c.state, step, action, due, now - due,
                                 working_days_between(cal, due, now)))
    return Capped(tuple(items), total)


def _due_soon(s: Session, p: str, now: datetime, until: datetime, limit: int) -> Capped[DueCase]:
    where = and_(Case.partnership == p, Case.state.in_(LIVE), Deadline.state == "pending",
                 Deadline.action != "remind", Deadline.due_at > now, Deadline.due_at <= until)
    total = _count(s, select(func.count(Deadline.id)).join(Case, Deadline.case_id == Case.id).where(where))
    rows = s.execute(select(Case.reference, Deadline.stage, Deadline.step, Deadline.action, Deadline.due_at)
                     .join(Case, Deadline.case_id == Case.id).where(where)
                     .order_by(Deadline.due_at, Deadline.id).limit(limit))
    return Capped(tuple(DueCase(ref, stage, step, action, _aware(due)) for ref, stage, step, action, due in rows),
                  total)


def _new(s: Session, p: str, since: datetime, limit: int) -> Capped[NewCase]:
    # (opened_at, id) from the overview index, the few rows shown by id: no plan reads every case.
    keys = s.execute(select(Case.opened_at, Case.id).where(Case.partnership == p, Case.opened_at > since)).all()
    ids = [cid for _, cid in sorted((_aware(at), cid) for at, cid in keys)[:limit]]
    found = {r.id: r for r in s.execute(select(Case.id, Case.reference, Case.state, Case.stage, Case.urgent,
                                                Case.opened_at, Case.raising_agency, Case.receiving_agency)
                                         .where(Case.id.in_(ids)))} if ids else {}
    return Capped(tuple(NewCase(r.reference, r.state, r.stage, r.urgent, _aware(r.opened_at),
                                r.raising_agency, r.receiving_agency)
                        for r in (found[i] for i in ids)), len(keys))


def _resolved(s: Session, p: str, since: datetime, cal: WorkingCalendar, limit: int) -> Capped[ResolvedCase]:
    where = and_(Case.partnership == p, Case.resolved_at > since,
                 Case.state.in_((State.RESOLVED.value, State.CLOSED.value)))
    total = _count(s, select(func.count(Case.id)).where(where))
    rows = s.execute(select(Case.reference, Case.stage, Case.state, Case.opened_at, Case.resolved_at)
                     .where(where).order_by(Case.resolved_at, Case.id).limit(limit))
    items = []
    for ref, stage, state, opened, resolved in rows:
        opened, resolved = _aware(opened), _aware(resolved or opened)
        items.append(ResolvedCase(ref, stage, state, resolved, resolved - opened,
                                  working_days_between(cal, opened, resolved)))
    return Capped(tuple(items), total)


def _awaiting_confirmation(s: Session, p: str, limit: int) -> Capped[AwaitingConfirmation]:
    where = and_(Case.partnership == p, Case.state == State.RESOLVED.value)
    total = _count(s, select(func.count()).select_from(Case).where(where))   # index-only
    rows = s.execute(select(Case.id, Case.reference, Case.stage, Case.resolved_at)
                     .where(where).order_by(Case.resolved_at, Case.id).limit(limit)).all()
    handed = set(s.scalars(select(Event.case_id).join(Case, Event.case_id == Case.id).where(
        Event.case_id.in_([r.id for r in rows]), Event.action == "confirmation_handed_over",
        Event.at >= Case.resolved_at))) if rows else set()
    return Capped(tuple(AwaitingConfirmation(r.reference, r.stage, _aware(r.resolved_at), r.id in handed)
                        for r in rows), total)


def _stalled(s: Session, rt: PartnershipRuntime, limit: int) -> Capped[StalledCase]:
    """Cases waiting on a person (pipeline/stalls.py). Only cases that ever asked for routing, had
    a final alert or were handed over can be stalled: the rule runs on those, not on every case."""
    from mailflow.pipeline.stalls import stall_of

    # The few cases with such an event (the index on action), then those of them live here: one
    # plan whatever the database's statistics say (a join was planned as 25,000 index probes).
    asked = sorted({cid for cid in s.scalars(select(Event.case_id).where(
        Event.action.in_(("needs_routing", "final_alert", "confirmation_handed_over")))) if cid is not None})
    ids: list[int] = []
    for chunk in range(0, len(asked), 1000):
        ids += s.scalars(select(Case.id).where(Case.id.in_(asked[chunk:chunk + 1000]),
                                               Case.partnership == rt.prefix, Case.state.in_(LIVE)))
    found: list[StalledCase] = []
    for chunk in range(0, len(ids), 500):
        cases = s.scalars(select(Case).where(Case.id.in_(ids[chunk:chunk + 500]))
                          .options(selectinload(Case.events), selectinload(Case.participants))).all()
        for c in cases:
            stall = stall_of(rt, c)
            if stall is not None:
                found.append(StalledCase(c.reference, c.stage, stall.kind, stall.label, _aware(stall.since)))
            for obj in (c, *c.events, *c.participants):   # a few hundred at a time in memory
                s.expunge(obj)
    found.sort(key=lambda c: (c.since, c.reference))
    return Capped(tuple(found[:limit]), len(found))


def _to_check(s: Session, p: str, since: datetime, limit: int) -> Capped[CheckEvent]:
    where = and_(Case.partnership == p, Event.action.in_(TO_CHECK), Event.at > since,
                 or_(Event.action != "needs_routing", Case.state.in_(LIVE)))
    total = _count(s, select(func.count(Event.id)).join(Case, Event.case_id == Case.id).where(where))
    rows = s.execute(select(Case.reference, Event.action, Event.at, Event.detail)
                     .join(Case, Event.case_id == Case.id).where(where).order_by(Event.at, Event.id).limit(limit))
    items = []
    for ref, action, at, detail in rows:
        detail = detail if isinstance(detail, dict) else {}
        text = detail.get("problem") or "; ".join(str(r) for r in detail.get("reasons", []))
        items.append(CheckEvent(ref, action.replace("_", " "), _aware(at), str(text)[:200]))
    return Capped(tuple(items), total)
