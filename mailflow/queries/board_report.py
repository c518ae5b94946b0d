"""The Board report's read model: escalations raised by agency and stage reached, time in each
stage (working and calendar days), overdue counts, outcomes and learning themes, over the cases
opened in a period. The command line (`mailflow report`) and the web console offer the same
report from here.

Every aggregate is computed in SQL (GROUP BY, window functions over the audit events); only
the working-day count runs in Python, once per distinct (policy, stage, first day, last day)
group, not per case. Cases are counted, never people: nothing here reads a name, an address or
the text of a form. Cases removed by retention (`mailflow purge`) count through the anonymous
totals the purge kept (`retained_counts`, `retained_measures`), by the month they opened.
"""

from __future__ import annotations

import tomllib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, case, cast, exists, func, literal, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from mailflow.core.calendar import WorkingCalendar
from mailflow.db.models import Case, Deadline, Event, Participant, RetainedCount, RetainedMeasure

UK = ZoneInfo("Europe/London")
NOT_KNOWN = "(agency not known)"
ENTERS = ("opened", "escalated", "reopened")        # the event starts a stage
LEAVES = ("resolved", "withdrawn")                  # the event ends the stage it happened in
THEMES_FILE = Path(__file__).with_name("learning_themes.toml")
LEARNING_FIELDS = ("learning_agency", "learning_partnership")


@dataclass(frozen=True)
class Period:
    start: date            # first UK day, inclusive
    end: date              # last UK day, inclusive
    partnership: str | None = None

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"the period ends ({self.end}) before it starts ({self.start})")

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time(0), UK).astimezone(UTC)

    @property
    def end_at(self) -> datetime:
        """The instant after the last day."""
        return datetime.combine(self.end + timedelta(days=1), time(0), UK).astimezone(UTC)

    def months(self) -> list[str]:
        """The months (YYYY-MM) whose first day falls in the period: retained totals are monthly."""
        out, d = [], date(self.start.year, self.start.month, 1)
        if d < self.start:
            d = _next_month(d)
        while d <= self.end:
            out.append(f"{d:%Y-%m}")
            d = _next_month(d)
        return out


@dataclass
class AgencyRow:
    agency: str
    raised: int = 0
    overdue: int = 0
    by_stage: dict[int, int] = field(default_factory=dict)      # stage reached -> cases
    by_outcome: dict[str, int] = field(default_factory=dict)    # state now -> cases


@dataclass
class StageRow:
    stage: int
    intervals: int = 0               # times a case spent at this stage and left it
    working_days: int = 0            # in total over those intervals
    calendar_days: int = 0
    longest_working_days: int = 0
    ongoing: int = 0                 # cases still at this stage at the period's end

    @property
    def mean_working_days(self) -> float | None:
        return round(self.working_days / self.intervals, 1) if self.intervals else None

    @property
    def mean_calendar_days(self) -> float | None:
        return round(self.calendar_days / self.intervals, 1) if self.intervals else None


@dataclass
class BoardReport:
    period: Period
    as_of: datetime
    agencies: list[AgencyRow]
    stages: list[StageRow]
    themes: list[tuple[str, int]]
    with_learning: int               # cases whose form records any learning
    retained_cases: int              # of the cases counted, those already purged (monthly totals)

    @property
    def raised(self) -> int:
        return sum(a.raised for a in self.agencies)

    @property
    def overdue(self) -> int:
        return sum(a.overdue for a in self.agencies)

    @property
    def stages_reached(self) -> dict[int, int]:
        return _sum_maps(a.by_stage for a in self.agencies)

    @property
    def outcomes(self) -> dict[str, int]:
        return _sum_maps(a.by_outcome for a in self.agencies)


@dataclass(frozen=True)
class Theme:
    name: str
    words: tuple[str, ...]
    flag: str | None = None


@cache
def themes() -> tuple[Theme, ...]:
    data = tomllib.loads(THEMES_FILE.read_text(encoding="utf-8"))
    return tuple(Theme(t["name"], tuple(w.lower() for w in t.get("words", ())), t.get("flag"))
                 for t in data["theme"])


# ------------------------------------------------------------------------------ the report

def board_report(s: Session, period: Period, as_of: datetime,
                 calendars: Mapping[str, WorkingCalendar] | None = None) -> BoardReport:
    """The report over cases opened in `period` (UK days), as things stand at `as_of`.
    `calendars`: each policy's working-day calendar by policy name (else Monday to Friday)."""
    selection = _in_period(period)
    until = as_of
    agencies = _agencies(s, selection, until)
    stages = _stage_times(s, selection, until, calendars or {})
    counts = _theme_counts(s, selection)
    retained = _retained(s, period, agencies, stages, counts)
    with_learning = counts.pop("", 0)
    names = [t.name for t in themes()]
    return BoardReport(period=period, as_of=as_of,
                       agencies=sorted(agencies.values(), key=lambda a: (-a.raised, a.agency)),
                       stages=[stages[k] for k in sorted(stages)],
                       themes=[(n, counts.get(n, 0)) for n in names], with_learning=with_learning,
                       retained_cases=retained)


def _in_period(period: Period) -> list[ColumnElement[bool]]:
    where = [Case.opened_at >= period.start_at, Case.opened_at < period.end_at]
    if period.partnership:
        where.append(Case.partnership == period.partnership)
    return where


def _agency_of() -> ColumnElement[str]:
    """The raising agency as the directory names it (the raiser participant's), else as the form
    words it, else NOT_KNOWN."""
    named = (select(func.min(Participant.agency)).where(Participant.case_id == Case.id, Participant.side == "raiser")
             .correlate(Case).scalar_subquery())
    return func.coalesce(named, func.nullif(Case.fields["raiser_agency"].as_string(), ""), literal(NOT_KNOWN))


def _overdue(until: datetime) -> ColumnElement[bool]:
    """A deadline that ran out (fired) or is past and still pending: a stage, a response or a
    confirmation later than the policy allows. Reminders are not deadlines."""
    return exists().where(Deadline.case_id == Case.id, Deadline.action != "remind",
                          Deadline.state != "cancelled", Deadline.due_at < until)


def _agencies(s: Session, selection: Sequence[ColumnElement[bool]], until: datetime) -> dict[str, AgencyRow]:
    agency = _agency_of().label("agency")
    overdue = func.sum(case((_overdue(until), 1), else_=0))
    stmt = (select(agency, Case.stage, Case.state, func.count(), overdue)
            .where(*selection).group_by(agency, Case.stage, Case.state))
    rows: dict[str, AgencyRow] = {}
    for name, stage, state, n, late in s.execute(stmt):
        _add_counts(rows, str(name), int(stage), str(state), int(n), int(late or 0))
    return rows


def _add_counts(rows: dict[str, AgencyRow], agency: str, stage: int, state: str, n: int, overdue: int) -> None:
    row = rows.setdefault(agency, AgencyRow(agency))
    row.raised += n
    row.overdue += overdue
    row.by_stage[stage] = row.by_stage.get(stage, 0) + n
    row.by_outcome[state] = row.by_outcome.get(state, 0) + n


def _day(s: Session, column: Any) -> ColumnElement[Any]:
    """The UTC calendar day of an instant, as text YYYY-MM-DD on both backends."""
    if s.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(cast(column, String), 1, 10)


def _stage_times(s: Session, selection: Sequence[ColumnElement[bool]], until: datetime,
                 calendars: Mapping[str, WorkingCalendar]) -> dict[int, StageRow]:
    """Each stage a case entered (opened at, escalated to, reopened at) until the next mark
    (the next stage, resolved, withdrawn); a stage not yet left is `ongoing`."""
    entered = case((Event.action == "escalated", Event.detail["to_stage"].as_integer()),
                   else_=Event.detail["stage"].as_integer())
    marks = (select(Event.action.label("action"), Case.policy.label("policy"), entered.label("stage"),
                    Event.at.label("began"),
                    func.lead(Event.at).over(partition_by=Event.case_id, order_by=Event.id).label("ended"))
             .join(Case, Case.id == Event.case_id)
             .where(*selection, Event.action.in_(ENTERS + LEAVES), Event.at < until)
             .subquery())
    began, ended = _day(s, marks.c.began), _day(s, marks.c.ended)
    stmt = (select(marks.c.policy, marks.c.stage, began, ended, func.count())
            .where(marks.c.action.in_(ENTERS), marks.c.stage.is_not(None))
            .group_by(marks.c.policy, marks.c.stage, began, ended))
    rows: dict[int, StageRow] = {}
    for policy, stage, first, last, n in s.execute(stmt):
        row = rows.setdefault(int(stage), StageRow(int(stage)))
        if last is None:
            row.ongoing += int(n)
            continue
        start, end = date.fromisoformat(first), date.fromisoformat(last)
        working = working_days_between(calendars.get(policy), start, end)
        row.intervals += int(n)
        row.working_days += working * int(n)
        row.calendar_days += (end - start).days * int(n)
        row.longest_working_days = max(row.longest_working_days, working)
    return rows


def working_days_between(calendar: WorkingCalendar | None, start: date, end: date) -> int:
    """Working days after `start` up to and including `end` (a stage begun and left on one day: 0)."""
    if end <= start:
        return 0
    return _working_index(calendar, end) - _working_index(calendar, start)


@cache
def _working_year(calendar: WorkingCalendar | None, year: int) -> tuple[int, ...]:
    """Working days counted from 1 January to each day of the year (cumulative)."""
    out, n, d = [], 0, date(year, 1, 1)
    while d.year == year:
        working = calendar.is_working_day(d) if calendar is not None else d.weekday() < 5
        n += int(working)
        out.append(n)
        d += timedelta(days=1)
    return tuple(out)


@cache
def _working_before_year(calendar: WorkingCalendar | None, year: int) -> int:
    """Working days from the year 2000 to the end of the year before `year`."""
    return sum(_working_year(calendar, y)[-1] for y in range(2000, year))


def _working_index(calendar: WorkingCalendar | None, d: date) -> int:
    return _working_before_year(calendar, d.year) + _working_year(calendar, d.year)[d.timetuple().tm_yday - 1]


def _learning_text() -> ColumnElement[str]:
    parts = [func.coalesce(Case.fields[f].as_string(), "") for f in LEARNING_FIELDS]
    return func.lower(parts[0] + literal(" ") + parts[1])


def _theme_counts(s: Session, selection: Sequence[ColumnElement[bool]]) -> dict[str, int]:
    """Cases per learning theme, and under "" the cases recording any learning at all."""
    text = _learning_text()
    columns: list[ColumnElement[Any]] = []
    for theme in themes():
        hit = or_(*(text.like(f"%{w}%") for w in theme.words))
        if theme.flag:
            hit = or_(hit, _flag(theme.flag))
        columns.append(func.sum(case((hit, 1), else_=0)))
    flags = [_flag(t.flag) for t in themes() if t.flag]
    any_learning = or_(func.length(func.trim(text)) > 0, *flags)
    columns.append(func.sum(case((any_learning, 1), else_=0)))
    row = s.execute(select(*columns).where(*selection)).one()
    counts = {t.name: int(v or 0) for t, v in zip(themes(), row, strict=False)}
    counts[""] = int(row[-1] or 0)
    return counts


def _flag(name: str) -> ColumnElement[bool]:
    """A Yes/No form field that says yes (stored as JSON true, or as text saying yes)."""
    value = func.lower(func.coalesce(Case.fields[name].as_string(), ""))
    return value.in_(("true", "1", "yes", "y"))


def _retained(s: Session, period: Period, agencies: dict[str, AgencyRow], stages: dict[int, StageRow],
              counts: dict[str, int]) -> int:
    """Add the purged cases' totals for the months that begin in the period; how many cases."""
    months = period.months()
    if not months:
        return 0
    where: list[ColumnElement[bool]] = [RetainedCount.month.in_(months)]
    if period.partnership:
        where.append(RetainedCount.partnership == period.partnership)
    total = 0
    stmt = (select(RetainedCount.agency, RetainedCount.stage_reached, RetainedCount.outcome,
                   func.sum(RetainedCount.cases), func.sum(RetainedCount.overdue))
            .where(*where).group_by(RetainedCount.agency, RetainedCount.stage_reached, RetainedCount.outcome))
    for agency, stage, outcome, n, late in s.execute(stmt):
        _add_counts(agencies, str(agency), int(stage), str(outcome), int(n), int(late or 0))
        total += int(n)
    mwhere: list[ColumnElement[bool]] = [RetainedMeasure.month.in_(months)]
    if period.partnership:
        mwhere.append(RetainedMeasure.partnership == period.partnership)
    mstmt = (select(RetainedMeasure.measure, func.sum(RetainedMeasure.count),
                    func.sum(RetainedMeasure.working_days), func.sum(RetainedMeasure.calendar_days),
                    func.max(RetainedMeasure.working_days))
             .where(*mwhere).group_by(RetainedMeasure.measure))
    for measure, n, working, calendar, longest in s.execute(mstmt):
        kind, _, name = str(measure).partition(":")
        if kind == "stage_longest":
            row = stages.setdefault(int(name), StageRow(int(name)))
            row.longest_working_days = max(row.longest_working_days, int(longest))
        elif kind == "stage_days":
            row = stages.setdefault(int(name), StageRow(int(name)))
            row.intervals += int(n)
            row.working_days += int(working)
            row.calendar_days += int(calendar)
        elif kind == "theme":
            counts[name] = counts.get(name, 0) + int(n)
        elif kind == "learning":
            counts[""] = counts.get("", 0) + int(n)
    return total


# ------------------------------------------------------------------------------ for retention

def measures_of(s: Session, case_ids: Iterable[int], calendars: Mapping[str, WorkingCalendar]
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The anonymous totals to keep of cases about to be purged, in the shape of the retained
    tables (without partnership keys merged): counts by (partnership, month opened, agency,
    stage reached, outcome) and measures by (partnership, month, measure)."""
    ids = list(case_ids)
    counts: list[dict[str, Any]] = []
    measures: dict[tuple[str, str, str], dict[str, Any]] = {}
    for chunk in _chunks(ids, 500):
        cases = s.execute(select(Case.id, Case.partnership, Case.opened_at).where(Case.id.in_(chunk))).all()
        month = {cid: f"{opened.astimezone(UK):%Y-%m}" for cid, _, opened in cases}
        owner = {cid: p for cid, p, _ in cases}
        agency = _agency_of().label("agency")
        late = func.sum(case((_overdue(datetime.max.replace(tzinfo=UTC)), 1), else_=0))
        for cid, name, stage, state, n, overdue in s.execute(
                select(Case.id, agency, Case.stage, Case.state, func.count(), late)
                .where(Case.id.in_(chunk)).group_by(Case.id, agency, Case.stage, Case.state)):
            counts.append({"partnership": owner[cid], "month": month[cid], "agency": str(name)[:200],
                           "stage_reached": int(stage), "outcome": str(state), "cases": int(n),
                           "overdue": int(overdue or 0)})
        for cid in chunk:
            key = (owner[cid], month[cid])
            selection = [Case.id == cid]
            for stage, row in _stage_times(s, selection, datetime.max.replace(tzinfo=UTC), calendars).items():
                m = measures.setdefault((*key, f"stage_days:{stage}"), _measure(*key, f"stage_days:{stage}"))
                m["count"] += row.intervals
                m["working_days"] += row.working_days
                m["calendar_days"] += row.calendar_days
                if row.intervals:
                    top = measures.setdefault((*key, f"stage_longest:{stage}"),
                                              _measure(*key, f"stage_longest:{stage}"))
                    top["working_days"] = max(top["working_days"], row.longest_working_days)
            found = _theme_counts(s, selection)
            for name, n in found.items():
                if n:
                    label = f"theme:{name}" if name else "learning:any"
                    measures.setdefault((*key, label), _measure(*key, label))["count"] += n
    return counts, list(measures.values())


def _measure(partnership: str, month: str, measure: str) -> dict[str, Any]:
    return {"partnership": partnership, "month": month, "measure": measure[:64], "count": 0,
            "working_days": 0, "calendar_days": 0}


def _chunks(items: list[int], n: int) -> Iterable[list[int]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _next_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def _sum_maps(maps: Iterable[dict[Any, int]]) -> dict[Any, int]:
    total: dict[Any, int] = defaultdict(int)
    for m in maps:
        for k, v in m.items():
            total[k] += v
    return dict(total)


