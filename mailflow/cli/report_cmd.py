"""`mailflow report --from DATE --to DATE [--partnership P] --format csv|xlsx [--output FILE]`:
the Board report over the cases opened in a period (mailflow/queries/board_report.py).

CSV is one table in long form (section, item, measure, value), easy to pivot; XLSX has a sheet
per section and a chart sheet (escalations by agency and stage reached). Cases are counted,
never people: no name, address or form text is in either.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import io
import sys
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from mailflow.cli.context import CliContext
from mailflow.core.humanize import local_stamp
from mailflow.errors import ConfigError
from mailflow.private_files import create_private_file
from mailflow.queries.board_report import BoardReport, Period, board_report

OUTCOMES = {"incomplete": "Incomplete form", "open": "Open", "resolved": "Resolved, awaiting confirmation",
            "closed": "Closed (outcome confirmed)", "withdrawn": "Withdrawn"}


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    period = _period(args, ctx)
    app = ctx.app
    calendars = {name: policy.calendar for name, policy in app.policies.items()}
    if args.format == "xlsx":
        _import_meanwhile("openpyxl")
    with app.db.transaction() as s:
        report = board_report(s, period, ctx.clock.now(), calendars)
    if args.format == "xlsx":
        target = Path(args.output or f"board-report-{period.start}-{period.end}.xlsx")
        _write_private(target, to_xlsx(report))
        print(f"wrote {target} ({report.raised} cases)")
        return 0
    text = to_csv(report)
    if args.output:
        _write_private(Path(args.output), text.encode("utf-8"))
        print(f"wrote {args.output} ({report.raised} cases)")
    else:
        sys.stdout.write(text)
    return 0


def _import_meanwhile(module: str) -> None:
    """Import `module` on a thread while this one waits for the database (the driver lets go of
    the interpreter while it waits): openpyxl, with the numpy it looks for, takes 0.3-0.5 s to
    import, about what the report's queries take. A failure is left for the real import to report."""
    def load() -> None:
        with contextlib.suppress(Exception):
            importlib.import_module(module)

    threading.Thread(target=load, name=f"import-{module}", daemon=True).start()


def _period(args: argparse.Namespace, ctx: CliContext) -> Period:
    try:
        start, end = date.fromisoformat(args.date_from), date.fromisoformat(args.date_to)
        prefix = ctx.config.partnership(args.partnership).prefix if args.partnership else None
        return Period(start, end, prefix)
    except ValueError as exc:
        raise ConfigError(f"report: {exc}") from None


def _write_private(path: Path, data: bytes) -> None:
    create_private_file(path)
    path.write_bytes(data)


def outcome_label(state: str) -> str:
    return OUTCOMES.get(state, state)


def rows(report: BoardReport) -> Iterator[tuple[str, str, str, Any]]:
    """The report in long form: (section, item, measure, value)."""
    p = report.period
    yield "summary", "period", "from", p.start.isoformat()
    yield "summary", "period", "to", p.end.isoformat()
    yield "summary", "period", "partnership", p.partnership or "all"
    yield "summary", "period", "as of", local_stamp(report.as_of)
    yield "summary", "cases", "escalations raised", report.raised
    yield "summary", "cases", "overdue at least once", report.overdue
    yield "summary", "cases", "recording learning", report.with_learning
    yield "summary", "cases", "already purged (monthly totals)", report.retained_cases
    for a in report.agencies:
        yield "escalations by agency", a.agency, "raised", a.raised
        for stage in sorted(a.by_stage):
            yield "escalations by agency", a.agency, f"stage {stage} reached", a.by_stage[stage]
        yield "escalations by agency", a.agency, "overdue", a.overdue
        for state in sorted(a.by_outcome):
            yield "escalations by agency", a.agency, f"outcome: {outcome_label(state)}", a.by_outcome[state]
    for stage, n in sorted(report.stages_reached.items()):
        yield "stage reached", f"Stage {stage}", "cases", n
    for st in report.stages:
        item = f"Stage {st.stage}"
        yield "time in stage", item, "times left", st.intervals
        yield "time in stage", item, "mean working days", _blank(st.mean_working_days)
        yield "time in stage", item, "mean calendar days", _blank(st.mean_calendar_days)
        yield "time in stage", item, "longest working days", st.longest_working_days
        yield "time in stage", item, "still at this stage", st.ongoing
    for state, n in sorted(report.outcomes.items()):
        yield "outcomes", outcome_label(state), "cases", n
    for theme, n in report.themes:
        yield "learning themes", theme, "cases", n


def _blank(value: float | None) -> float | str:
    return "" if value is None else value


def to_csv(report: BoardReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "item", "measure", "value"])
    for row in rows(report):
        writer.writerow([_safe(v) for v in row])
    return out.getvalue()


def _safe(value: Any) -> Any:
    """No cell a spreadsheet would run as a formula (an agency name typed as "=..." on a form)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_xlsx(report: BoardReport) -> bytes:
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, Reference
    from openpyxl.styles import Font

    wb = Workbook()
    bold = Font(bold=True)

    def sheet(title: str, header: list[str], body: list[list[Any]], first: bool = False) -> Any:
        ws = wb.active if first else wb.create_sheet()
        ws.title = title
        ws.append(header)
        for cell in ws[1]:
            cell.font = bold
        for line in body:
            ws.append([_safe(v) for v in line])
        for column in ws.columns:
            width = max(len(str(c.value or "")) for c in column)
            ws.column_dimensions[column[0].column_letter].width = min(max(width + 2, 10), 60)
        ws.freeze_panes = "A2"
        return ws

    summary = [[section_item, measure, value] for section, section_item, measure, value in rows(report)
               if section == "summary"]
    sheet("Summary", ["", "measure", "value"], summary, first=True)

    stages = sorted({s for a in report.agencies for s in a.by_stage} | {1})
    states = [s for s in OUTCOMES if any(s in a.by_outcome for a in report.agencies)]
    agencies = sheet("By agency",
                     ["Agency", "Raised", *(f"Reached stage {s}" for s in stages), "Overdue",
                      *(outcome_label(s) for s in states)],
                     [[a.agency, a.raised, *(a.by_stage.get(s, 0) for s in stages), a.overdue,
                       *(a.by_outcome.get(s, 0) for s in states)] for a in report.agencies])
    sheet("Time in stage",
          ["Stage", "Times left", "Mean working days", "Mean calendar days", "Longest (working days)",
           "Still at this stage"],
          [[f"Stage {st.stage}", st.intervals, st.mean_working_days, st.mean_calendar_days,
            st.longest_working_days, st.ongoing] for st in report.stages])
    sheet("Outcomes", ["Outcome", "Cases"],
          [[outcome_label(s), n] for s, n in sorted(report.outcomes.items())])
    sheet("Learning themes", ["Theme", "Cases"], [[t, n] for t, n in report.themes])

    chart = BarChart()
    chart.type, chart.grouping, chart.overlap = "bar", "stacked", 100
    chart.title = "Escalations by raising agency and stage reached"
    chart.y_axis.title, chart.x_axis.title = "Cases", "Agency"
    n = len(report.agencies)
    if n:
        data = Reference(agencies, min_col=3, max_col=2 + len(stages), min_row=1, max_row=n + 1)
        chart.add_data(data, titles_from_data=True)
        chart.set_categories(Reference(agencies, min_col=1, min_row=2, max_row=n + 1))
    chartsheet = wb.create_chartsheet("Chart")
    chartsheet.add_chart(chart)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
