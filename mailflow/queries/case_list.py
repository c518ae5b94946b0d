"""The case list: one page of cases (or all of them, streamed) with each case's next deadline.

Shared by `mailflow cases list` and the web console's paged list. It reads only the columns a
list shows (never the form's fields: no personal data, and no large JSON per row) and finds each
case's next deadline in SQL, one indexed lookup per listed case (`ix_deadlines_case_due`), so a
page costs what it shows whatever the number of cases. Pages are keyset pages in case order
(`limit` + the `next_after` cursor of the page before), so page 1,000 costs what page 1 does.

    page = list_cases(session, CaseFilter(state="open", overdue_at=now), limit=50)
    more = list_cases(session, CaseFilter(state="open", overdue_at=now), limit=50, after=page.next_after)
    for row in iter_cases(session, CaseFilter(partnership="SSP")): ...

"Next deadline" is the earliest pending deadline that is not a reminder (a reminder announces a
deadline; it is not one), as `cases show` and the digest count it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, select
from sqlalchemy.orm import Session

from mailflow.db.models import Case, Deadline, Participant

MAX_LIMIT = 1_000   # rows per page at most
STREAM_PAGE = 1_000


@dataclass(frozen=True)
class CaseFilter:
    """Which cases to list; every field left as None lists them all.

    `agency`: a participant of the case (raiser, other side or a stage's contact) is recorded for
    that agency (case-insensitive, whole name). `overdue_at`: the case's next deadline is due at
    or before that instant. `reference`: the reference starts with this (case-insensitive).
    `search`: the reference contains this text anywhere (case-insensitive)."""

    partnership: str | None = None
    state: str | None = None
    stage: int | None = None
    agency: str | None = None
    overdue_at: datetime | None = None
    reference: str | None = None
    search: str | None = None
    urgent: bool | None = None


@dataclass(frozen=True)
class CaseRow:
    """One listed case: what a list shows, no form fields."""

    id: int
    reference: str
    partnership: str
    policy: str
    state: str
    stage: int
    urgent: bool
    opened_at: datetime
    stage_started_at: datetime
    updated_at: datetime
    missing: list[str]
    next_due: datetime | None
    next_step: str | None
    next_action: str | None

    def overdue(self, at: datetime) -> bool:
        return self.next_due is not None and self.next_due <= at


@dataclass(frozen=True)
class CasePage:
    rows: list[CaseRow]
    next_after: int | None   # pass as `after` for the next page; None: this was the last page


def list_cases(session: Session, filters: CaseFilter | None = None, *, limit: int = 50,
               after: int | None = None) -> CasePage:
    """One page of cases in case order (oldest first), after the case id `after` if given.
    `limit` is capped at MAX_LIMIT."""
    limit = max(1, min(limit, MAX_LIMIT))
    stmt = _page(filters or CaseFilter(), after).limit(limit + 1)
    found = session.execute(stmt).all()
    more = len(found) > limit
    found = found[:limit]
    next_ids = [r.next_id for r in found if r.next_id is not None]
    nexts = {d.id: d for d in session.execute(
        select(Deadline.id, Deadline.due_at, Deadline.step, Deadline.action).where(Deadline.id.in_(next_ids)))
    } if next_ids else {}
    rows = []
    for r in found:
        d = nexts.get(r.next_id) if r.next_id is not None else None
        rows.append(CaseRow(
            id=r.id, reference=r.reference, partnership=r.partnership, policy=r.policy, state=r.state,
            stage=r.stage, urgent=r.urgent, opened_at=r.opened_at, stage_started_at=r.stage_started_at,
            updated_at=r.updated_at, missing=list(r.missing or []),
            next_due=d.due_at if d else None, next_step=d.step if d else None, next_action=d.action if d else None))
    return CasePage(rows, rows[-1].id if more and rows else None)


def iter_cases(session: Session, filters: CaseFilter | None = None, *, page_size: int = STREAM_PAGE
               ) -> Iterator[CaseRow]:
    """Every matching case, page by page (memory follows the page, not the number of cases)."""
    after: int | None = None
    while True:
        page = list_cases(session, filters, limit=page_size, after=after)
        yield from page.rows
        if page.next_after is None:
            return
        after = page.next_after


def count_cases(session: Session, filters: CaseFilter | None = None) -> int:
    """How many cases match (for a pager's "n cases")."""
    where = _where(filters or CaseFilter())
    return session.scalar(select(func.count()).select_from(Case).where(*where)) or 0


def _next_deadline() -> Select[int]:
    return (select(Deadline.id)
            .where(Deadline.case_id == Case.id, Deadline.state == "pending", Deadline.action != "remind")
            .order_by(Deadline.due_at, Deadline.id).limit(1))


def _page(f: CaseFilter, after: int | None) -> Select[*tuple[Any, ...]]:
    next_id = _next_deadline().correlate(Case).scalar_subquery().label("next_id")
    stmt = select(Case.id, Case.reference, Case.partnership, Case.policy, Case.state, Case.stage, Case.urgent,
                  Case.opened_at, Case.stage_started_at, Case.updated_at, Case.missing, next_id)
    where = _where(f)
    if after is not None:
        where.append(Case.id > after)
    return stmt.where(*where).order_by(Case.id)


def _where(f: CaseFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if f.partnership is not None:
        where.append(Case.partnership == f.partnership)
    if f.state is not None:
        where.append(Case.state == f.state)
    if f.stage is not None:
        where.append(Case.stage == f.stage)
    if f.urgent is not None:
        where.append(Case.urgent == f.urgent)
    if f.reference:
        where.append(func.upper(Case.reference).like(_escape(f.reference.upper()) + "%", escape="\\"))
    if f.search:
        where.append(func.upper(Case.reference).like("%" + _escape(f.search.upper()) + "%", escape="\\"))
    if f.agency:
        where.append(exists().where(Participant.case_id == Case.id,
                                    func.lower(Participant.agency) == f.agency.strip().lower()))
    if f.overdue_at is not None:
        where.append(exists().where(and_(Deadline.case_id == Case.id, Deadline.state == "pending",
                                         Deadline.action != "remind", Deadline.due_at <= f.overdue_at)))
    return where


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
