"""The console's pages: the dashboard (the digest's picture), the case list, a case, the policy and
its timeline, the directory and its problems.

A `viewer` sees references, states, stages, agencies and dates only; the form, the people, the
messages and the audit trail are for `team` and `admin`, and every such view of a case is written
to its audit trail."""

from __future__ import annotations

import logging
import re
import threading
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailflow.core import form_fields
from mailflow.core.deadlines import timeline
from mailflow.core.humanize import duration
from mailflow.core.lifecycle import State
from mailflow.db.models import Case, Deadline, Event, InboundMessage, OutboxMessage, Participant
from mailflow.db.store import find_case
from mailflow.directory import Directory
from mailflow.logging_setup import error_summary
from mailflow.pipeline.audit import record_read
from mailflow.pipeline.case_file import stage_history
from mailflow.pipeline.digest import last_digest_at
from mailflow.pipeline.stalls import stall_of
from mailflow.queries.case_list import CaseFilter, list_cases
from mailflow.queries.overview import NOT_IDENTIFIED, Overview, overview
from mailflow.web.console import Console, Visit, route

if TYPE_CHECKING:
    from mailflow.app import PartnershipRuntime

UK = ZoneInfo("Europe/London")
log = logging.getLogger(__name__)
MAX_SEARCH = 40
DASHBOARD_LIST = 15    # rows of each list on the dashboard, then "and N more"
STALE_AT_MOST = timedelta(minutes=2)   # older dashboard figures are worked out again before the page


def routes() -> list[BaseRoute]:
    return [
        Route("/", dashboard, methods=["GET"]),
        Route("/cases", case_list, methods=["GET"]),
        Route("/cases/{reference}", case_page, methods=["GET"]),
        Route("/policy", policy_page, methods=["GET"]),
        Route("/directory", directory_page, methods=["GET"]),
    ]


# ---------------------------------------------------------------------------- dashboard

@route("viewer")
def dashboard(v: Visit) -> Response:
    """What the digest says, now: the shared read model (mailflow/queries/overview.py) per partnership,
    counting "new" and "resolved" from the last digest, with the digest's chart. Worked out at most
    once a minute of the console's clock per worker: a page in the next minute or two is served the
    last figures while a background thread works out new ones; older (or after an action on this
    worker, which empties the cache) the page waits for them."""
    now = v.now
    minute = now.replace(second=0, microsecond=0)
    sections = []
    for rt in v.app.runtimes():
        cached = v.console.dashboard_cache.get(rt.prefix)
        if cached is None or not timedelta(0) <= minute - cached[0] <= STALE_AT_MOST:
            cached = _work_out(v.console, rt, now)
        elif cached[0] != minute:
            _refresh_later(v.console, rt, now)
        view = cached[1]
        titles = {st.number: st.title for st in rt.policy.stages}
        counts = {k: tuple(n) for k, n in view.age_by_stage.items()}
        sections.append({"partnership": rt.config, "o": view, "titles": titles,
                         "chart": _chart(counts, tuple(view.age_bands))})
    # "(agency not identified)" is a count, not an agency: the case list cannot filter on it.
    return v.page("dashboard.html.j2", sections=sections, now=now, duration=duration, not_identified=NOT_IDENTIFIED)


def _work_out(console: Console, rt: PartnershipRuntime, now: datetime) -> tuple[datetime, Overview]:
    with console.app.db.transaction() as s:
        view = overview(s, rt, now, last_digest_at(s, rt, now), limit=DASHBOARD_LIST)
    entry = (now.replace(second=0, microsecond=0), view)
    with console.lock:
        current = console.dashboard_cache.get(rt.prefix)
        if current is None or current[0] <= entry[0]:    # a slower, older refresh never overwrites
            console.dashboard_cache[rt.prefix] = entry
    return entry


def _refresh_later(console: Console, rt: PartnershipRuntime, now: datetime) -> None:
    """One background refresh per partnership at a time."""
    key = f"refreshing:{rt.prefix}"
    with console.lock:
        if console.dashboard_cache.get(key):
            return
        console.dashboard_cache[key] = True

    def refresh() -> None:
        try:
            _work_out(console, rt, now)
        except Exception as exc:  # noqa: BLE001 - the next page works the figures out itself
            log.warning("dashboard figures of %s not worked out: %s", rt.prefix, error_summary(exc))
        finally:
            console.dashboard_cache.pop(key, None)

    threading.Thread(target=refresh, name=f"dashboard-{rt.prefix}", daemon=True).start()


AGE_COLOURS = ("#0b4f8a", "#2e8540", "#b35c00", "#a4161a")   # one per age band, young to old


def _chart(counts: dict[int, tuple[int, ...]], bands: tuple[str, ...]) -> dict[str, Any] | None:
    """The digest's chart (open cases by stage, each bar split by age) as shapes for an inline SVG:
    drawn by the page itself, no image library, nothing the Content-Security-Policy must allow."""
    if not counts:
        return None
    widest = max(sum(n) for n in counts.values()) or 1
    bars = []
    for row, stage in enumerate(sorted(counts)):
        x, parts = 0.0, []
        for band, n in enumerate(counts[stage]):
            width = 600 * n / widest
            if n:
                parts.append({"x": round(x, 1), "width": round(width, 1), "n": n, "band": bands[band],
                              "colour": AGE_COLOURS[band % len(AGE_COLOURS)]})
            x += width
        bars.append({"stage": stage, "y": 10 + row * 34, "parts": parts, "total": sum(counts[stage])})
    legend = [{"band": b, "colour": AGE_COLOURS[i % len(AGE_COLOURS)], "x": 90 + i * 150} for i, b in enumerate(bands)]
    return {"bars": bars, "legend": legend, "height": 40 + len(bars) * 34}


# ---------------------------------------------------------------------------- case list

def _int(text: str | None) -> int | None:
    try:
        return int(text) if text not in (None, "") else None
    except ValueError:
        return None


@route("viewer")
def case_list(v: Visit) -> Response:
    """The shared case list (mailflow/queries/case_list.py): keyset pages in case order."""
    q = v.request.query_params
    now = v.now
    state = q.get("state") or ""
    state = state if state in {s.value for s in State} else ""
    stage = _int(q.get("stage"))
    agency = (q.get("agency") or "").strip()[:200]
    overdue = q.get("overdue") == "1"
    reference = (q.get("reference") or "").strip()[:MAX_SEARCH]
    filters = {"state": state, "stage": stage, "agency": agency, "overdue": overdue, "reference": reference}
    wanted = CaseFilter(state=state or None, stage=stage, agency=agency or None,
                        overdue_at=now if overdue else None, search=reference or None)
    after = _int(q.get("after"))
    with v.app.db.transaction() as s:
        page = list_cases(s, wanted, limit=v.console.settings.case_page_size, after=after)
        agencies = _agencies_of(s, [r.id for r in page.rows])
    query = "&".join(f"{k}={_q(val)}" for k, val in (
        ("state", filters["state"]), ("stage", filters["stage"] or ""), ("agency", filters["agency"]),
        ("overdue", "1" if filters["overdue"] else ""), ("reference", filters["reference"])) if val)
    known = sorted({a.name for rt in v.app.runtimes() for a in rt.directory.agencies})
    return v.page("cases.html.j2", rows=page.rows, agencies_of=agencies, filters=filters, next_after=page.next_after,
                  query=query, states=[s.value for s in State], agencies=known, first=after is None, now=now)


def _q(value: Any) -> str:
    return quote(str(value), safe="")


def _agencies_of(s: Session, ids: list[int]) -> dict[int, list[str]]:
    """The agencies recorded on the listed cases (one query for the page)."""
    found: dict[int, set[str]] = {}
    if ids:
        for case_id, agency in s.execute(select(Participant.case_id, Participant.agency)
                                         .where(Participant.case_id.in_(ids), Participant.agency.is_not(None))):
            if agency:
                found.setdefault(case_id, set()).add(agency)
    return {k: sorted(v) for k, v in found.items()}


# ---------------------------------------------------------------------------- one case

@route("viewer")
def case_page(v: Visit) -> Response:
    reference = v.request.path_params["reference"].upper()[:32]
    personal = v.can("team")
    now = v.now
    with v.app.db.transaction() as s:
        case = find_case(s, reference)
        if case is None:
            return v.refuse(404, f"There is no case {reference}.")
        view = case_view(s, v, case, personal)
        if personal:   # every view of a case's personal data is on its audit trail
            assert v.user is not None
            record_read(s, now, v.user.actor, "web console: case page", case=case)
    return v.page("case.html.j2", **view, personal=personal, states=State)


def case_view(s: Session, v: Visit, case: Case, personal: bool) -> dict[str, Any]:
    rt = v.app.runtime(case.partnership)
    events = s.scalars(select(Event).where(Event.case_id == case.id).order_by(Event.id)).all()
    history = stage_history(events, v.app.policies.get(case.policy))
    deadlines = s.scalars(select(Deadline).where(Deadline.case_id == case.id).order_by(Deadline.due_at)).all()
    stall = stall_of(rt, case)
    view: dict[str, Any] = {
        "case": case, "policy": rt.policy, "deadlines": deadlines, "now": v.now,
        "rules": {d.id: d.rule if personal else rule_without_reasons(d.rule) for d in deadlines},
        "history": [{"stage": h.stage, "title": h.title, "started": h.started,
                     "why": h.why if personal else None} for h in history],
        "stall": stall,
        "agencies": sorted({p.agency for p in case.participants if p.agency}),
    }
    if not personal:
        return view
    view.update(
        form=form_fields.canonical_rows(case.fields or {}),
        extra=form_fields.extra_rows(case.fields or {}),
        participants=case.participants,
        sent=s.scalars(select(OutboxMessage).where(OutboxMessage.case_id == case.id).order_by(OutboxMessage.id)).all(),
        received=s.scalars(select(InboundMessage).where(InboundMessage.case_id == case.id)
                           .order_by(InboundMessage.id)).all(),
        events=events,
        max_extension=rt.policy.max_extension_days,
    )
    return view


_EXTENSION = re.compile(r"; extended by (\d+) working day\(s\) \(")


def rule_without_reasons(rule: str) -> str:
    """A deadline's rule without the reasons typed for its extensions (free text a manager wrote,
    which may name someone): "…; extended by 2 working day(s)" for a viewer."""
    head, *extensions = _EXTENSION.split(rule)
    days = extensions[0::2]
    return head + "".join(f"; extended by {n} working day(s)" for n in days)


# ---------------------------------------------------------------------------- policy

@route("viewer")
def policy_page(v: Visit) -> Response:
    q = v.request.query_params
    runtimes = v.app.runtimes()
    rt = next((r for r in runtimes if r.prefix == q.get("partnership")), runtimes[0])
    policy = rt.policy
    start_text = (q.get("start") or "")[:10]
    urgent = q.get("urgent") == "1"
    error, specs, start = None, [], None
    if start_text:
        try:
            day = datetime.strptime(start_text, "%Y-%m-%d").date()
            start = datetime.combine(day, time(10, 0), tzinfo=UK)
            specs = timeline(policy, start, urgent)
        except ValueError:
            error = f"{start_text!r} is not a date (use the date picker or YYYY-MM-DD)."
    return v.page("policy.html.j2", runtimes=runtimes, rt=rt, policy=policy, start_text=start_text,
                  start=start, urgent=urgent, specs=specs, error=error)


# ---------------------------------------------------------------------------- directory

@route("admin")
def directory_page(v: Visit) -> Response:
    sections = []
    for p in v.app.config.partnerships:
        directory = Directory.load(p.directory, p.business_team)
        sections.append({"partnership": p, "directory": directory, "problems": directory.problems()})
    return v.page("directory.html.j2", sections=sections)
