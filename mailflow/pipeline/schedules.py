"""Scheduled sends in the database, exactly once: digests, reports and watchdog alerts.

A scheduled send belongs to a period, named by the instant it was due (`2026-12-21T08:00:00+00:00`)
or, for the watchdog, by a sequence number. Sending it means inserting the row (partnership, kind,
period) in the transaction that queues its mail: a second worker's insert conflicts and it sends
nothing (normal, not an error); a crash before the commit leaves the period free for the next
pass. APScheduler only wakes the daemon; which period is due, and whether it went, is decided
here, from the cron expression, the time and the rows.

A daemon that was down when a period fell due sends that period on start, marked late; only the
latest period is ever due, so a daemon down for a week sends one digest, not five.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mailflow.cron import cron_trigger as cron_trigger  # schedules are read in one place: mailflow/cron.py
from mailflow.db.models import ScheduleClaim

UK_ZONE = "Europe/London"
# A period found this long after its time was missed (the daemon was not running then): its mail
# says it is late. Within it, it is the daemon's ordinary wake-up (a sweep interval, a slow pass).
LATE_AFTER = timedelta(minutes=15)
_LONGEST_GAP = timedelta(days=400)   # a cron expression due less often than yearly is not looked back for


@dataclass(frozen=True)
class Period:
    due_at: datetime
    late: bool

    @property
    def key(self) -> str:
        return self.due_at.isoformat()


def latest_due(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The latest instant at or before `now` the trigger fires; None if none in the last 400 days.
    Looks back in growing windows so a frequent expression costs a few steps, not thousands."""
    window = timedelta(minutes=2)
    while window <= _LONGEST_GAP * 4:
        fire = trigger.get_next_fire_time(None, now - window)
        if fire is not None and fire <= now:
            latest: datetime = fire
            while (nxt := trigger.get_next_fire_time(latest, latest + timedelta(seconds=1))) is not None \
                    and nxt <= now:
                latest = nxt
            return latest.astimezone(UTC)
        window *= 4
    return None


def due_period(trigger: CronTrigger, now: datetime) -> Period | None:
    """The period to send now: the latest one due (late when its time passed long ago)."""
    due = latest_due(trigger, now)
    if due is None:
        return None
    return Period(due, late=now - due > LATE_AFTER)


def is_claimed(s: Session, partnership: str, kind: str, period: str) -> bool:
    return s.scalar(select(ScheduleClaim.id).where(
        ScheduleClaim.partnership == partnership, ScheduleClaim.kind == kind,
        ScheduleClaim.period == period)) is not None


def claim(s: Session, partnership: str, kind: str, period: str, due_at: datetime, now: datetime,
          late: bool = False, detail: dict[str, Any] | None = None) -> bool:
    """Take the period in the caller's transaction; False when another worker (or an earlier pass)
    has it. On PostgreSQL a concurrent claim waits for the first one's transaction to end."""
    insert = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = (insert(ScheduleClaim)
            .values(partnership=partnership, kind=kind, period=period, due_at=due_at, claimed_at=now,
                    late=late, detail=detail or {})
            .on_conflict_do_nothing(index_elements=["partnership", "kind", "period"])
            .returning(ScheduleClaim.id))
    return s.execute(stmt).scalar() is not None


def last_claim(s: Session, partnership: str, kind: str, before: datetime | None = None) -> ScheduleClaim | None:
    """The latest claimed period of a kind (before an instant, when given)."""
    stmt = select(ScheduleClaim).where(ScheduleClaim.partnership == partnership, ScheduleClaim.kind == kind)
    if before is not None:
        stmt = stmt.where(ScheduleClaim.due_at < before)
    return s.scalars(stmt.order_by(ScheduleClaim.due_at.desc(), ScheduleClaim.id.desc()).limit(1)).first()
