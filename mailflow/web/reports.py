"""Board report downloads: the same report as `mailflow report` (mailflow/queries/board_report.py),
as CSV or XLSX. Counts only, no person's data, so every role may download it."""

from __future__ import annotations

from datetime import date, timedelta

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailflow.cli.report_cmd import to_csv, to_xlsx
from mailflow.queries.board_report import Period, board_report
from mailflow.web.console import Visit, route

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_DAYS = 3660


def routes() -> list[BaseRoute]:
    return [
        Route("/reports", reports_page, methods=["GET"]),
        Route("/reports/board", board_download, methods=["GET"]),
    ]


def _default_period(today: date) -> tuple[date, date]:
    """The last full quarter, as a Board meets on quarters."""
    first_of_quarter = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    end = first_of_quarter - timedelta(days=1)
    return date(end.year, 3 * ((end.month - 1) // 3) + 1, 1), end


@route("viewer")
def reports_page(v: Visit) -> Response:
    start, end = _default_period(v.now.date())
    return v.page("reports.html.j2", start=start, end=end, runtimes=v.app.runtimes(), error=None)


@route("viewer")
def board_download(v: Visit) -> Response:
    q = v.request.query_params
    prefixes = {rt.prefix for rt in v.app.runtimes()}
    partnership = q.get("partnership") or None
    fmt = q.get("format", "csv")
    try:
        start, end = date.fromisoformat(q.get("from", "")[:10]), date.fromisoformat(q.get("to", "")[:10])
        if partnership is not None and partnership not in prefixes:
            raise ValueError(f"no partnership {partnership[:20]!r}")
        if fmt not in ("csv", "xlsx"):
            raise ValueError("choose CSV or XLSX")
        if (end - start).days > MAX_DAYS:
            raise ValueError("a report covers at most ten years")
        period = Period(start, end, partnership)
    except ValueError as exc:
        first, last = _default_period(v.now.date())
        return v.page("reports.html.j2", status=400, start=first, end=last, runtimes=v.app.runtimes(),
                      error=f"Cannot make that report: {exc}.")
    calendars = {name: policy.calendar for name, policy in v.app.policies.items()}
    with v.app.db.transaction() as s:
        report = board_report(s, period, v.now, calendars)
    name = f"board-report-{period.start}-{period.end}{'-' + partnership if partnership else ''}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "xlsx":
        return Response(to_xlsx(report), media_type=XLSX, headers=headers)
    return Response(to_csv(report), media_type="text/csv; charset=utf-8", headers=headers)
