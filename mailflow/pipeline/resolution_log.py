"""The digest's CSV: Swindon's Appendix 1 "Agency Case Resolution Summary Log", one row a case.

Its columns are the Appendix's (Case Number; Adult's Details: Name, DOB, Unique Identifier;
Concern; Summary of Professional Difference; Action taken towards reaching a Resolution; Outcome
of Resolution), then the agencies, stage and status. The rows are the live cases (open, or resolved
and awaiting written confirmation) and those closed or withdrawn since the last digest.

The adult's details are written only where the partnership's `digest_personal_data` is true;
otherwise that column says they are withheld and the adult's name, date of birth, address,
identifier and any postcode are blanked out of the free text. Cells are written so a spreadsheet
never reads one as a formula.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailflow.core.form_fields import TRIED, given, show
from mailflow.core.humanize import long_date
from mailflow.core.lifecycle import State
from mailflow.db.models import Case, Event
from mailflow.queries.overview import LIVE

MAX_ROWS = 500   # a bigger log is a Board report (`mailflow report`), not a daily attachment
COLUMNS = ("Case Number", "Adult's Details: Name: DOB: Unique Identifier", "Concern",
           "Summary of Professional Difference", "Action taken towards reaching a Resolution",
           "Outcome of Resolution", "Raising agency", "Receiving agency", "Stage", "Status")
WITHHELD = "withheld (digest_personal_data = false): mailflow cases show {ref}"
BLANKED = "[adult]"
_POSTCODE = re.compile(r"\b[A-Z]{1,2}[0-9][A-Z0-9]?\s*[0-9][A-Z]{2}\b", re.IGNORECASE)
_CHUNK = 500


def filename(prefix: str, now: datetime) -> str:
    return f"{prefix}-case-resolution-log-{now:%Y-%m-%d}.csv"


def resolution_log(s: Session, prefix: str, since: datetime, personal_data: bool, stage_names: Mapping[int, str],
                   max_rows: int = MAX_ROWS) -> bytes:
    # Counted, and the first `max_rows` ids found, in the indexes (two ranges rather than one OR,
    # which would read every case); the rows for those ids only, in case-number order. (Reading
    # every live id to count them took 0.3 s at 10^5 cases.)
    live_where = (Case.partnership == prefix, Case.state.in_(LIVE))
    ended_where = (Case.partnership == prefix, Case.closed_at > since, Case.state.not_in(LIVE))
    total = sum(s.scalar(select(func.count()).select_from(Case).where(*where)) or 0
                for where in (live_where, ended_where))
    chosen = list(s.scalars(select(Case.id).where(*live_where).order_by(Case.id).limit(max_rows)))
    if len(chosen) < max_rows:
        chosen += s.scalars(select(Case.id).where(*ended_where).order_by(Case.id).limit(max_rows - len(chosen)))
    by_id = {}
    for i in range(0, len(chosen), _CHUNK):
        for r in s.execute(select(Case.id, Case.reference, Case.state, Case.stage, Case.fields, Case.outcome,
                                  Case.opened_at, Case.resolved_at, Case.raising_agency, Case.receiving_agency)
                           .where(Case.id.in_(chosen[i:i + _CHUNK]))):
            by_id[r.id] = r
    rows = [by_id[i] for i in chosen]
    ids = [r.id for r in rows]
    stages = _stage_history(s, ids)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for r in rows:
        fields: Mapping[str, Any] = r.fields if isinstance(r.fields, Mapping) else {}
        clean = _blanker(fields) if not personal_data else (lambda text: text)
        adult = _adult(fields) if personal_data else WITHHELD.format(ref=r.reference)
        action = "; ".join([f"Raised {_day(r.opened_at)}",
                            *(f"escalated to Stage {stage} on {_day(at)}" for stage, at in stages.get(r.id, [])),
                            *(f"{row.label}: {row.value}" for row in given(fields, list(TRIED)))])
        writer.writerow(_safe([
            r.reference, adult, clean(show(fields.get("category"))),
            clean(show(fields.get("disagreement_summary"))), clean(action),
            clean(_outcome(r.state, r.stage, r.outcome, r.resolved_at)),
            r.raising_agency or "", r.receiving_agency or "",
            stage_names.get(r.stage, f"Stage {r.stage}"), r.state,
        ]))
    if total > len(rows):
        writer.writerow(_safe([f"... and {total - len(rows)} more cases: mailflow cases list"]))
    return out.getvalue().encode("utf-8-sig")   # with a BOM: Excel then reads it as UTF-8


def _adult(fields: Mapping[str, Any]) -> str:
    parts = [("Name", fields.get("adult_name")), ("DOB", fields.get("adult_dob")),
             ("Unique Identifier", fields.get("adult_identifier"))]
    return "; ".join(f"{label}: {show(value)}" for label, value in parts if show(value))


def _outcome(state: str, stage: int, outcome: str | None, resolved_at: datetime | None) -> str:
    if state == State.OPEN.value:
        return f"Not yet resolved (open at Stage {stage})"
    if state == State.WITHDRAWN.value:
        return "Withdrawn"
    when = f" on {_day(resolved_at)}" if resolved_at else ""
    confirmed = "confirmed in writing" if state == State.CLOSED.value else "awaiting written confirmation"
    return f"Resolved at Stage {stage}{when} ({confirmed}): {outcome or ''}".rstrip(": ")


def _day(at: datetime | None) -> str:
    return long_date(at.date().isoformat()) if at is not None else ""


def _blanker(fields: Mapping[str, Any]):  # type: ignore[no-untyped-def]
    """A function blanking this adult's details out of free text (any postcode too)."""
    needles: set[str] = set()
    for key in ("adult_name", "adult_address", "adult_identifier"):
        value = fields.get(key)
        if isinstance(value, str) and value.strip():
            needles.add(value.strip())
            needles.update(p.strip() for p in re.split(r"[,\s]+" if key == "adult_name" else r",", value)
                           if len(p.strip()) >= 3)
    dob = fields.get("adult_dob")
    if isinstance(dob, str) and dob.strip():
        needles.add(dob.strip())
        needles.update(_date_spellings(dob.strip()))
    pattern = re.compile("|".join(re.escape(n) for n in sorted(needles, key=len, reverse=True)),
                         re.IGNORECASE) if needles else None

    def blank(text: str) -> str:
        if pattern is not None:
            text = pattern.sub(BLANKED, text)
        return _POSTCODE.sub(BLANKED, text)
    return blank


def _date_spellings(iso: str) -> Iterable[str]:
    try:
        day = datetime.fromisoformat(iso).date()
    except ValueError:
        return []
    return [f"{day:%d/%m/%Y}", f"{day.day}/{day.month}/{day.year}", f"{day:%d.%m.%Y}", long_date(day.isoformat()),
            f"{day:%d-%m-%Y}"]


def _safe(cells: Sequence[object]) -> list[str]:
    """No cell starts like a formula (=, +, -, @, tab, CR): a spreadsheet shows it as text."""
    out = []
    for cell in cells:
        text = str(cell)
        out.append("'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text)
    return out


def _stage_history(s: Session, ids: Sequence[int]) -> dict[int, list[tuple[int, datetime]]]:
    out: dict[int, list[tuple[int, datetime]]] = {}
    for i in range(0, len(ids), _CHUNK):
        for cid, at, detail in s.execute(select(Event.case_id, Event.at, Event.detail)
                                         # `|| ''`: looked up by case, not through the index on action
                                         .where(Event.case_id.in_(ids[i:i + _CHUNK]),
                                                Event.action.concat("") == "escalated")
                                         .order_by(Event.id)):
            to_stage = detail.get("to_stage") if isinstance(detail, dict) else None
            if isinstance(to_stage, int):
                out.setdefault(cid, []).append((to_stage, at))
    return out
