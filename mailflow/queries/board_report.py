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

from sqlalchemy import Date, String, Text, case, cast, column, func, literal, or_, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from mailflow.core.calendar import WorkingCalendar
from mailflow.db.models import Case, Deadline, Event, RetainedCount, RetainedMeasure
from mailflow.db.snapshot import on_one_snapshot

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
    parts = (
        lambda c: (_agencies(c, selection, until), _retained_rows(c, period)),
        lambda c: _stage_times(c, selection, until, calendars or {}),
        lambda c: _theme_counts(c, selection),
    )
    # While the server works: the working-day tables of the years the stages can fall in.
    years = range(period.start.year - 1, until.year + 1)
    (agencies, retained_rows), stages, counts = on_one_snapshot(
        s, parts, name="board-report", work_mem="64MB", meanwhile=lambda: _working_years(calendars or {}, years))
    retained = _add_retained(retained_rows, agencies, stages, counts)
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


def _late_cases(until: datetime) -> Any:
    """Cases with a deadline that ran out (fired) or is past and still pending: a stage, a response
    or a confirmation later than the policy allows. Reminders are not deadlines."""
    return (select(Deadline.case_id.label("case_id"))
            .where(Deadline.action != "remind", Deadline.state != "cancelled", Deadline.due_at < until)
            .distinct().subquery("late"))


def _agencies(s: Session, selection: Sequence[ColumnElement[bool]], until: datetime) -> dict[str, AgencyRow]:
    rows: dict[str, AgencyRow] = {}
    for name, stage, state, n, overdue in _agency_groups(s, selection, until):
        _add_counts(rows, name, stage, state, n, overdue)
    return rows


def _agency_groups(s: Session, selection: Sequence[ColumnElement[bool]], until: datetime
                   ) -> list[tuple[str, int, str, int, int]]:
    """(raising agency, stage reached, state, cases, overdue cases) of the selected cases."""
    late = _late_cases(until)
    # The raising agency as the case holds it (the first named on the raising side: what the digest
    # and the dashboard count it under), else as the form words it, else NOT_KNOWN.
    agency = func.coalesce(Case.raising_agency, func.nullif(Case.fields["raiser_agency"].as_string(), ""),
                           literal(NOT_KNOWN))
    # Grouped in one step over the joined rows: a materialised per-case table first took 2-3x longer.
    late_one = case((late.c.case_id.is_not(None), 1), else_=0)
    stmt = (select(agency, Case.stage, Case.state, func.count(), func.sum(late_one))
            .outerjoin(late, late.c.case_id == Case.id)
            .where(*selection)
            .group_by(agency, Case.stage, Case.state))
    return [(str(name), int(stage), str(state), int(n), int(overdue or 0))
            for name, stage, state, n, overdue in s.execute(stmt)]


def _add_counts(rows: dict[str, AgencyRow], agency: str, stage: int, state: str, n: int, overdue: int) -> None:
    row = rows.setdefault(agency, AgencyRow(agency))
    row.raised += n
    row.overdue += overdue
    row.by_stage[stage] = row.by_stage.get(stage, 0) + n
    row.by_outcome[state] = row.by_outcome.get(state, 0) + n


def _day(s: Session, column: Any) -> ColumnElement[Any]:
    """The UTC calendar day of an instant (a date on PostgreSQL, text YYYY-MM-DD on SQLite)."""
    if s.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return func.substr(cast(column, String), 1, 10)


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


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
        start, end = _as_date(first), _as_date(last)
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
    first = _working_year(calendar, start.year)
    if start.year == end.year:
        return _working_year(calendar, end.year)[_yday(end)] - first[_yday(start)]
    between = sum(_working_year(calendar, y)[-1] for y in range(start.year + 1, end.year))
    return first[-1] - first[_yday(start)] + between + _working_year(calendar, end.year)[_yday(end)]


def _yday(d: date) -> int:
    return d.timetuple().tm_yday - 1


def _working_years(calendars: Mapping[str, WorkingCalendar], years: Iterable[int]) -> None:
    """Work out (and keep) the working-day tables of these years for every calendar in advance."""
    for calendar in (None, *calendars.values()):
        for year in years:
            _working_year(calendar, year)


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


def _theme_counts(s: Session, selection: Sequence[ColumnElement[bool]]) -> dict[str, int]:
    """Cases per learning theme, and under "" the cases recording any learning at all. Each case's
    learning text and Yes/No answers are read out of its form once (a CTE), then matched."""
    flags = sorted({t.flag for t in themes() if t.flag})
    postgres = s.get_bind().dialect.name == "postgresql"
    if postgres:
        # One parse of each form (json_to_record) rather than one per field read: 5x less work.
        names = [*LEARNING_FIELDS, *flags]
        record = (func.json_to_record(Case.fields).table_valued(*(column(n, Text) for n in names))
                  .render_derived(name="form", with_types=True))
        value = {n: record.c[n] for n in names}
        source = select().select_from(Case).join(record, true())
    else:
        value = {n: Case.fields[n].as_string() for n in (*LEARNING_FIELDS, *flags)}
        source = select().select_from(Case)
    # Only a form holding a learning field or a flag can count: the others are skipped by a plain
    # text search of the stored JSON (its keys as json.dumps wrote them), without parsing it.
    stored = cast(Case.fields, Text)
    holds_any = or_(*(func.instr(stored, f'"{n}"') > 0 if not postgres else func.strpos(stored, f'"{n}"') > 0
                      for n in (*LEARNING_FIELDS, *flags)))
    parts = [func.coalesce(value[f], "") for f in LEARNING_FIELDS]
    learning = (source.add_columns(func.lower(parts[0] + literal(" ") + parts[1]).label("text"),
                                   *(func.lower(func.coalesce(value[f], "")).label(f) for f in flags))
                .where(*selection, holds_any).cte("learning").prefix_with("MATERIALIZED"))
    text = learning.c.text

    def said_yes(flag: str) -> ColumnElement[bool]:
        return learning.c[flag].in_(("true", "1", "yes", "y"))

    columns: list[ColumnElement[Any]] = []
    for theme in themes():
        hit = or_(*(text.like(f"%{w}%") for w in theme.words))
        if theme.flag:
            hit = or_(hit, said_yes(theme.flag))
        columns.append(func.sum(case((hit, 1), else_=0)))
    any_learning = or_(func.length(func.trim(text)) > 0, *(said_yes(f) for f in flags))
    columns.append(func.sum(case((any_learning, 1), else_=0)))
    row = s.execute(select(*columns).select_from(learning)).one()
    counts = {t.name: int(v or 0) for t, v in zip(themes(), row, strict=False)}
    counts[""] = int(row[-1] or 0)
    return counts


RetainedRows = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


def _retained_rows(s: Session, period: Period) -> RetainedRows:
    """The purged cases' totals for the months that begin in the period: (counts, measures)."""
    months = period.months()
    if not months:
        return [], []
    where: list[ColumnElement[bool]] = [RetainedCount.month.in_(months)]
    if period.partnership:
        where.append(RetainedCount.partnership == period.partnership)
    stmt = (select(RetainedCount.agency, RetainedCount.stage_reached, RetainedCount.outcome,
                   func.sum(RetainedCount.cases), func.sum(RetainedCount.overdue))
            .where(*where).group_by(RetainedCount.agency, RetainedCount.stage_reached, RetainedCount.outcome))
    mwhere: list[ColumnElement[bool]] = [RetainedMeasure.month.in_(months)]
    if period.partnership:
        mwhere.append(RetainedMeasure.partnership == period.partnership)
    mstmt = (select(RetainedMeasure.measure, func.sum(RetainedMeasure.count),
                    func.sum(RetainedMeasure.working_days), func.sum(RetainedMeasure.calendar_days),
                    func.max(RetainedMeasure.working_days))
             .where(*mwhere).group_by(RetainedMeasure.measure))
    return [tuple(r) for r in s.execute(stmt)], [tuple(r) for r in s.execute(mstmt)]


def _add_retained(rows: RetainedRows, agencies: dict[str, AgencyRow], stages: dict[int, StageRow],
                  counts: dict[str, int]) -> int:
    """Add the purged cases' totals to the live ones; how many cases."""
    total = 0
    count_rows, measure_rows = rows
    for agency, stage, outcome, n, late in count_rows:
        _add_counts(agencies, str(agency), int(stage), str(outcome), int(n), int(late or 0))
        total += int(n)
    for measure, n, working, calendar, longest in measure_rows:
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
    tables: counts by (partnership, month opened, agency, stage reached, outcome) and measures by
    (partnership, month, measure). The same queries as the report, once per month of cases."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for chunk in _chunks(list(case_ids), 500):
        for cid, partnership, opened in s.execute(
                select(Case.id, Case.partnership, Case.opened_at).where(Case.id.in_(chunk))):
            groups[(partnership, f"{opened.astimezone(UK):%Y-%m}")].append(cid)
    ever = datetime.max.replace(tzinfo=UTC)
    counts: list[dict[str, Any]] = []
    measures: list[dict[str, Any]] = []
    for (partnership, month), ids in sorted(groups.items()):
        key = {"partnership": partnership, "month": month}
        tally: dict[tuple[str, int, str], list[int]] = defaultdict(lambda: [0, 0])
        themed: dict[str, int] = defaultdict(int)
        times: dict[int, StageRow] = {}
        for chunk in _chunks(ids, 500):
            selection = [Case.id.in_(chunk)]
            for agency, stage, state, n, overdue in _agency_groups(s, selection, ever):
                tally[(agency[:200], stage, state)][0] += n
                tally[(agency[:200], stage, state)][1] += overdue
            for stage, st in _stage_times(s, selection, ever, calendars).items():
                total = times.setdefault(stage, StageRow(stage))
                total.intervals += st.intervals
                total.working_days += st.working_days
                total.calendar_days += st.calendar_days
                total.longest_working_days = max(total.longest_working_days, st.longest_working_days)
            for name, n in _theme_counts(s, selection).items():
                themed[name] += n
        counts += [{**key, "agency": agency, "stage_reached": stage, "outcome": state, "cases": n, "overdue": late}
                   for (agency, stage, state), (n, late) in sorted(tally.items())]
        for stage, st in sorted(times.items()):
            if st.intervals:
                measures.append({**key, "measure": f"stage_days:{stage}", "count": st.intervals,
                                 "working_days": st.working_days, "calendar_days": st.calendar_days})
                measures.append({**key, "measure": f"stage_longest:{stage}", "count": 0,
                                 "working_days": st.longest_working_days, "calendar_days": 0})
        for name, n in sorted(themed.items()):
            if n:
                measures.append({**key, "measure": (f"theme:{name}" if name else "learning:any")[:64], "count": n,
                                 "working_days": 0, "calendar_days": 0})
    return counts, measures


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


