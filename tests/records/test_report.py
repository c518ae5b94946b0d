"""The Board report on a populated database at a fixed instant (SQLite and PostgreSQL): cases by
raising agency and stage reached, time in each stage in working and calendar days, overdue,
outcomes, learning themes; CSV and XLSX with a chart sheet; no person's data in either."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from mailflow.cli.main import main
from mailflow.clock import parse_instant
from tests.conftest import make_message
from tests.engine.conftest import Harness

POLICE = "pat.sample@police.example.org"
PEOPLE = ("Ada Testperson", "Bea Madeup", "Jo Example", "Pat Sample", "jo.example@", POLICE, "1951", "Example Road")
POLICE_FORM = """Case Resolution Stage 1 / 2 Pro-forma

Name of adult: Bea Madeup
DOB: 05/06/1950
Name, Role and Agency of person completing this form: Pat Sample, Detective Sergeant, Wiltshire Police
Your email: pat.sample@police.example.org
Other agency: Great Western Hospitals NHS Foundation Trust
Brief details of the professional disagreement: Disagreement about discharge planning for Bea Madeup.
Learning for your agency: Staff training on referral thresholds; a joint meeting earlier.
A requirement for staff training: Yes
"""


def _populate(h: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, str, str]:
    """Two cases opened Mon 21 Dec 2026 (one from the hospital, one from the police with learning),
    both escalated when Stage 1 ran out; the police case resolved on 4 Jan; a third opened in January."""
    hospital = h.open_case()
    outcome, _ = h.ingest(make_message(POLICE, "Escalation form", POLICE_FORM, date=h.clock.now()))
    police = "SSP-2026-0002"
    h.run_until("2027-01-04T10:00:00")
    assert h.case(hospital)["stage"] == h.case(police)["stage"] == 2
    assert main(["--config", str(tmp_path / "mailflow.toml"), "cases", "resolve", police,
                 "agreed", "a", "plan", "--at", "2027-01-04T10:00:00"]) == 0
    january = h.open_case()
    capsys.readouterr()
    return hospital, police, january


def _working_days(h: Harness, start: date, end: date) -> int:
    cal = h.app.policies["swindon"].calendar
    return sum(cal.is_working_day(start + timedelta(days=i)) for i in range(1, (end - start).days + 1))


def _report_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[tuple[str, str, str], str]:
    code = main(["--config", str(tmp_path / "mailflow.toml"), "report", "--from", "2026-12-01", "--to", "2026-12-31",
                 "--format", "csv", "--at", "2027-01-05T12:00:00", *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    reader = csv.reader(io.StringIO(out))
    assert next(reader) == ["section", "item", "measure", "value"]
    for person in PEOPLE:
        assert person not in out
    return {(r[0], r[1], r[2]): r[3] for r in reader}


def test_report_counts_agencies_stages_times_outcomes_and_themes(
        h_any: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _populate(h_any, tmp_path, capsys)
    r = _report_csv(tmp_path, capsys)
    hospital, police = "Great Western Hospitals NHS Foundation Trust", "Wiltshire Police"
    assert r[("summary", "cases", "escalations raised")] == "2"      # the January case is outside
    assert r[("escalations by agency", hospital, "raised")] == "1"
    assert r[("escalations by agency", police, "raised")] == "1"
    assert r[("escalations by agency", police, "stage 2 reached")] == "1"
    assert r[("escalations by agency", police, "outcome: Resolved, awaiting confirmation")] == "1"
    assert r[("escalations by agency", hospital, "outcome: Open")] == "1"
    assert r[("summary", "cases", "overdue at least once")] == "2"   # both ran out of Stage 1
    assert r[("stage reached", "Stage 2", "cases")] == "2"
    # Stage 1: the policy's five working days, each case; over Christmas that is 9 calendar days.
    escalated = h_any.events("SSP-2026-0001", "escalated")[0].at
    opened = parse_instant("2026-12-21T10:00:00")
    assert r[("time in stage", "Stage 1", "times left")] == "2"
    assert float(r[("time in stage", "Stage 1", "mean working days")]) == 5.0
    assert float(r[("time in stage", "Stage 1", "mean calendar days")]) == (escalated.date() - opened.date()).days
    # Stage 2: the police case left it when resolved on 4 Jan; the hospital case is still there.
    assert r[("time in stage", "Stage 2", "times left")] == "1"
    assert r[("time in stage", "Stage 2", "still at this stage")] == "1"
    assert float(r[("time in stage", "Stage 2", "mean working days")]) == \
        _working_days(h_any, escalated.date(), date(2027, 1, 4))
    assert r[("learning themes", "Staff training", "cases")] == "1"
    assert r[("learning themes", "Referral criteria and thresholds", "cases")] == "1"
    assert r[("learning themes", "Communication and joint working", "cases")] == "1"
    assert r[("learning themes", "Mental capacity", "cases")] == "0"
    assert r[("summary", "cases", "recording learning")] == "1"

    only = _report_csv(tmp_path, capsys, "--partnership", "SSP")
    assert only.pop(("summary", "period", "partnership")) == "SSP"
    assert only == {k: v for k, v in r.items() if k != ("summary", "period", "partnership")}


def test_xlsx_has_a_sheet_per_section_and_a_chart_sheet_without_personal_data(
        h: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _populate(h, tmp_path, capsys)
    target = tmp_path / "reports" / "board.xlsx"
    code = main(["--config", str(tmp_path / "mailflow.toml"), "report", "--from", "2026-12-01", "--to",
                 "2026-12-31", "--format", "xlsx", "--output", str(target), "--at", "2027-01-05T12:00:00"])
    assert code == 0 and "2 cases" in capsys.readouterr().out
    assert (target.stat().st_mode & 0o777) == 0o600
    wb = load_workbook(target)
    assert wb.sheetnames == ["Summary", "By agency", "Time in stage", "Outcomes", "Learning themes", "Chart"]
    assert [c.title for c in wb.chartsheets] == ["Chart"]
    agencies = {row[0]: row for row in wb["By agency"].iter_rows(min_row=2, values_only=True)}
    header = next(wb["By agency"].iter_rows(max_row=1, values_only=True))
    assert header[:4] == ("Agency", "Raised", "Reached stage 1", "Reached stage 2")
    assert agencies["Wiltshire Police"][1] == 1 and agencies["Wiltshire Police"][3] == 1
    with zipfile.ZipFile(target) as z:
        xml = "".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    assert "barChart" in xml and "Escalations by raising agency" in xml
    for person in PEOPLE:
        assert person not in xml


def test_bad_dates_are_a_usage_error(tmp_path: Path, h: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(tmp_path / "mailflow.toml")
    assert main(["--config", config, "report", "--from", "2026-12-31", "--to", "2026-12-01"]) == 2
    assert "ends (2026-12-01) before it starts" in capsys.readouterr().err
    assert main(["--config", config, "report", "--from", "yesterday", "--to", "2026-12-01"]) == 2


def test_working_days_between_agrees_with_counting_day_by_day(h: Harness) -> None:
    import random

    from mailflow.queries.board_report import working_days_between

    cal = h.app.policies["swindon"].calendar
    rnd = random.Random(13)
    for _ in range(300):
        a = date(2024, 1, 1) + timedelta(days=rnd.randrange(1200))
        b = a + timedelta(days=rnd.randrange(900))
        by_day = sum(cal.is_working_day(a + timedelta(days=i)) for i in range(1, (b - a).days + 1))
        assert working_days_between(cal, a, b) == by_day, (a, b)
    assert working_days_between(cal, date(2026, 12, 21), date(2026, 12, 30)) == 5   # Christmas and Boxing Day
    assert working_days_between(None, date(2026, 12, 25), date(2026, 12, 28)) == 1  # Mon-Fri only


def _report_by_hand(h: Harness, period_start: date, period_end: date, as_of: datetime) -> dict[str, Any]:
    """The report worked out in plain Python from every row, case by case, day by day."""
    from mailflow.db.models import Case, Deadline, Event, Participant
    from mailflow.queries.board_report import ENTERS, LEARNING_FIELDS, LEAVES, NOT_KNOWN, UK, themes

    cal = h.app.policies["swindon"].calendar
    agencies: dict[str, dict[str, Any]] = {}
    stages: dict[int, list[int]] = {}      # stage -> [intervals, working, calendar, longest, ongoing]
    counts = {t.name: 0 for t in themes()}
    learning = 0
    with h.app.db.transaction() as s:
        for c in s.scalars(select(Case).order_by(Case.id)):
            if not period_start <= c.opened_at.astimezone(UK).date() <= period_end:
                continue
            raisers = [p.agency for p in s.scalars(select(Participant).where(
                Participant.case_id == c.id, Participant.side == "raiser").order_by(Participant.id))
                if p.agency is not None]
            agency = raisers[0] if raisers else (c.fields.get("raiser_agency") or NOT_KNOWN)
            late = any(d.action != "remind" and d.state != "cancelled" and d.due_at < as_of
                       for d in s.scalars(select(Deadline).where(Deadline.case_id == c.id)))
            row = agencies.setdefault(agency, {"raised": 0, "overdue": 0, "stage": {}, "state": {}})
            row["raised"] += 1
            row["overdue"] += late
            row["stage"][c.stage] = row["stage"].get(c.stage, 0) + 1
            row["state"][c.state] = row["state"].get(c.state, 0) + 1
            marks = [e for e in s.scalars(select(Event).where(Event.case_id == c.id).order_by(Event.id))
                     if e.action in ENTERS + LEAVES and e.at < as_of]
            for mark, after in zip(marks, [*marks[1:], None], strict=True):
                stage = mark.detail.get("to_stage" if mark.action == "escalated" else "stage")
                if mark.action not in ENTERS or stage is None:
                    continue
                st = stages.setdefault(int(stage), [0, 0, 0, 0, 0])
                if after is None:
                    st[4] += 1
                    continue
                first, last = mark.at.astimezone(UTC).date(), after.at.astimezone(UTC).date()
                working = sum(cal.is_working_day(first + timedelta(days=i)) for i in range(1, (last - first).days + 1))
                st[0], st[1], st[2] = st[0] + 1, st[1] + working, st[2] + (last - first).days
                st[3] = max(st[3], working)
            text = " ".join(str(c.fields.get(f) or "") for f in LEARNING_FIELDS).lower()
            flags = {t.flag: str(c.fields.get(t.flag, "")).lower() in ("true", "1", "yes", "y")
                     for t in themes() if t.flag}
            for t in themes():
                counts[t.name] += any(w in text for w in t.words) or (t.flag is not None and flags[t.flag])
            learning += bool(text.strip()) or any(flags.values())
    return {"agencies": agencies, "stages": stages, "themes": counts, "learning": learning}


def test_the_sql_aggregates_equal_a_case_by_case_computation(
        h_any: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mailflow.queries.board_report import Period, board_report

    _populate(h_any, tmp_path, capsys)
    h_any.run_until("2027-01-20T10:00:00")            # the January case runs out of Stage 1 too
    config = str(tmp_path / "mailflow.toml")
    january = "SSP-2027-0001"
    assert main(["--config", config, "cases", "resolve", january, "agreed", "--at", "2027-01-21T10:00:00"]) == 0
    capsys.readouterr()
    as_of = parse_instant("2027-01-25T12:00:00")
    calendars = {name: p.calendar for name, p in h_any.app.policies.items()}
    for start, end in ((date(2026, 12, 1), date(2027, 1, 31)), (date(2027, 1, 1), date(2027, 1, 31))):
        expected = _report_by_hand(h_any, start, end, as_of)
        with h_any.app.db.transaction() as s:
            report = board_report(s, Period(start, end), as_of, calendars)
        assert {a.agency: {"raised": a.raised, "overdue": a.overdue, "stage": a.by_stage, "state": a.by_outcome}
                for a in report.agencies} == expected["agencies"]
        assert {st.stage: [st.intervals, st.working_days, st.calendar_days, st.longest_working_days, st.ongoing]
                for st in report.stages} == expected["stages"]
        assert dict(report.themes) == expected["themes"]
        assert report.with_learning == expected["learning"]
    assert expected["agencies"] and expected["stages"]          # the last period is not empty


@pytest.mark.postgres
def test_on_postgresql_every_part_of_the_report_reads_the_callers_snapshot(tmp_path: Path, pg_url: str) -> None:
    """The report's queries run side by side on their own connections, each on the snapshot of the
    caller's transaction: a case committed after that snapshot was taken is in no figure."""
    from sqlalchemy import func
    from sqlalchemy.orm import Session

    from mailflow.db.models import Case
    from mailflow.queries.board_report import Period, board_report
    from tests.engine.conftest import open_harness

    h = open_harness(tmp_path, pg_url)
    try:
        h.open_case()
        calendars = {name: p.calendar for name, p in h.app.policies.items()}
        period, as_of = Period(date(2026, 12, 1), date(2026, 12, 31)), parse_instant("2026-12-22T12:00:00")
        with h.app.db.engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, \
                Session(bind=conn) as s:
            assert s.execute(select(func.count()).select_from(Case)).scalar_one() == 1   # the snapshot
            h.open_case()                                    # committed on another connection after it
            report = board_report(s, period, as_of, calendars)
        assert report.raised == 1
        assert sum(st.ongoing for st in report.stages) == 1
        with h.app.db.transaction() as s:
            report = board_report(s, period, as_of, calendars)
        assert report.raised == 2
        assert sum(st.ongoing for st in report.stages) == 2
    finally:
        h.app.close()
