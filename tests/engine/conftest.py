"""A small harness for driving the escalation engine by the clock: ingest mail, sweep every due
deadline in order (as a daemon running continuously would), and read back the outbox, the
ledger, the events and the deadlines. Invented people only (the example directory)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mailflow.app import App
from mailflow.clock import FixedClock, parse_instant
from mailflow.core.references import sign_token
from mailflow.db.models import Case, Deadline, Event, LedgerEntry, OutboxMessage
from mailflow.pipeline.ingest import ingest_one
from mailflow.pipeline.sweep import SweepResult, sweep
from mailflow.sources.base import InboundMail, Outcome
from mailflow.sources.maildir import MaildirSource
from tests.conftest import make_config, make_form, make_message

START = "2026-12-21T10:00:00"  # Mon 21 Dec 2026, 10:00 UK (= UTC in winter)
RAISER = "jo.example@gwh.nhs.example.org"
ASC_MANAGER = "priya.examplewood@asc.swindon.example.org"
GWH_MANAGER = "liam.testcase@gwh.nhs.example.org"
ASC_SENIOR = "tom.samplefield@asc.swindon.example.org"
GWH_SENIOR = "nadia.mockford@gwh.nhs.example.org"
BUSINESS = "business.team@ssp.example.org"
CHAIR = "chair@ssp.example.org"
ADDRESS = "safeguarding@ssp.example.org"


class Harness:
    def __init__(self, app: App, clock: FixedClock) -> None:
        self.app = app
        self.clock = clock
        self.rt = app.runtime()
        self._n = 0

    # -- mail in
    def deliver(self, *raws: bytes) -> MaildirSource:
        """The messages put in a Maildir beside the app's var folder (000.eml, 001.eml, ...)."""
        box = MaildirSource(self.app.config.var_dir.parent / "mail")
        for n, raw in enumerate(raws):
            box.deliver(raw, f"{n:03d}.eml")
        return box

    def maildir_new(self) -> list[str]:
        """The names of the messages still in that Maildir's new/ folder."""
        return sorted(p.name for p in (self.app.config.var_dir.parent / "mail" / "new").iterdir())

    def ingest(self, raw: bytes) -> tuple[Outcome, str | None]:
        self._n += 1
        return ingest_one(self.rt, InboundMail(raw=raw, source_id=f"test:{self._n}:{id(raw)}"))

    def open_case(self, sender: str = RAISER, **form: Any) -> str:
        outcome, reason = self.ingest(make_form(sender, **form))
        assert outcome == Outcome.PROCESSED, reason
        with self.app.db.transaction() as s:
            return s.scalars(select(Case.reference).order_by(Case.id.desc())).first()

    def last_sent(self, ref: str, to: str | None = None) -> OutboxMessage:
        """The latest outbox row of the case (addressed to `to` when given)."""
        rows = [r for r in self.outbox(ref) if to is None or to.lower() in [a.lower() for a in r.recipients]]
        assert rows, f"nothing sent for {ref} to {to}"
        return rows[-1]

    def reply(self, ref: str, sender: str, body: str, *, how: str = "thread",
              headers: dict[str, str] | None = None, subject: str | None = None,
              token: str | None = None) -> tuple[Outcome, str | None]:
        """A reply about case `ref`: tied by thread (answers the latest notice sender received),
        by signed token (plus-address in To: `token`, else one minted now for the case's current
        stage), or not at all ("tag": only the subject tag)."""
        in_reply_to, to = None, ADDRESS
        if how == "thread":
            in_reply_to = self.last_sent(ref, sender).message_id
        elif how == "token":
            to = f"safeguarding+{token or self.token(ref)}@ssp.example.org"
        raw = make_message(sender, subject or f"Re: [{ref}] Stage update", body, to=to,
                           in_reply_to=in_reply_to, references=in_reply_to, headers=headers,
                           date=self.clock.now())
        return self.ingest(raw)

    def token(self, ref: str, stage: int | None = None, days: int = 60) -> str:
        """A genuine reply token for the case, as a notice sent now would carry."""
        return sign_token(ref, self.app.secret_key, stage=stage or self.case(ref)["stage"],
                          expires=(self.clock.now() + timedelta(days=days)).date())

    # -- time
    def sweep(self, at: datetime | None = None, dry_run: bool = False) -> SweepResult:
        return sweep(self.rt, at or self.clock.now(), dry_run=dry_run)

    def run_until(self, until: datetime | str) -> list[tuple[datetime, SweepResult]]:
        """Sweep at each pending deadline's instant up to `until`, in order, moving the clock."""
        until = parse_instant(until) if isinstance(until, str) else until
        out = []
        while True:
            with self.app.db.transaction() as s:
                due = s.scalar(select(func.min(Deadline.due_at)).where(Deadline.state == "pending"))
            if due is None or _aware(due) > until:
                break
            self.clock.set(_aware(due))
            out.append((_aware(due), self.sweep()))
        self.clock.set(until)
        return out

    # -- reading back
    def case(self, ref: str) -> dict[str, Any]:
        with self.app.db.transaction() as s:
            c = s.scalars(select(Case).where(Case.reference == ref)).one()
            return {"state": c.state, "stage": c.stage, "urgent": c.urgent,
                    "stage_started_at": _aware(c.stage_started_at),
                    "participants": sorted(p.email for p in c.participants)}

    def pending(self, ref: str) -> list[tuple[int, str, str, datetime]]:
        with self.app.db.transaction() as s:
            rows = s.scalars(select(Deadline).join(Case).where(Case.reference == ref, Deadline.state == "pending")
                             .order_by(Deadline.due_at, Deadline.id)).all()
            return [(d.stage, d.step, d.action, _aware(d.due_at)) for d in rows]

    def outbox(self, ref: str | None = None, kind: str | None = None) -> list[OutboxMessage]:
        with self.app.db.transaction() as s:
            stmt = select(OutboxMessage).order_by(OutboxMessage.id)
            if ref is not None:
                stmt = stmt.join(Case, OutboxMessage.case_id == Case.id).where(Case.reference == ref)
            if kind is not None:
                stmt = stmt.where(OutboxMessage.kind == kind)
            rows = s.scalars(stmt).all()
            s.expunge_all()
            return list(rows)

    def events(self, ref: str, action: str | None = None) -> list[Event]:
        with self.app.db.transaction() as s:
            stmt = select(Event).join(Case, Event.case_id == Case.id).where(Case.reference == ref).order_by(Event.id)
            if action is not None:
                stmt = stmt.where(Event.action == action)
            rows = s.scalars(stmt).all()
            s.expunge_all()
            return list(rows)

    def ledger(self) -> list[tuple[int, int, str, str]]:
        with self.app.db.transaction() as s:
            return [(e.case_id, e.stage, e.step, e.kind) for e in s.scalars(select(LedgerEntry))]

    def snapshot(self, ref: str) -> tuple[Any, ...]:
        """State, stage, urgency, stage clock and pending deadlines: what a forged reply must not change."""
        c = self.case(ref)
        return (c["state"], c["stage"], c["urgent"], c["stage_started_at"], tuple(self.pending(ref)))


def _aware(dt: datetime) -> datetime:
    from datetime import UTC

    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def recipients(row: OutboxMessage) -> set[str]:
    return {a.lower() for a in row.recipients}


def open_harness(tmp_path: Path, db_url: str, policy: str = "swindon", prefix: str = "SSP",
                 clock: FixedClock | None = None) -> Harness:
    clock = clock or FixedClock(parse_instant(START))
    return Harness(App.open(make_config(tmp_path, db_url, policy=policy, prefix=prefix), clock), clock)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'engine.db'}"


@pytest.fixture
def h(tmp_path: Path, sqlite_url: str) -> Iterator[Harness]:
    """Swindon on SQLite."""
    harness = open_harness(tmp_path, sqlite_url)
    yield harness
    harness.app.close()


@pytest.fixture
def h_any(tmp_path: Path, db_url: str) -> Iterator[Harness]:
    """Swindon on SQLite and on PostgreSQL."""
    harness = open_harness(tmp_path, db_url)
    yield harness
    harness.app.close()
