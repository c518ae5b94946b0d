"""What `/healthz` says: per partnership the last successful mailbox read, the outbox backlog and
its oldest unsent message, the oldest deadline due and not yet acted on, and whether the database
answers, judged by the pure rules of mailflow/core/health.py with the config's thresholds.

No personal data: prefixes, counts, times and the rules' own sentences only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, text

from mailflow.core.health import Thresholds, check_health
from mailflow.db.models import Case, Deadline, MailboxSync, OutboxMessage
from mailflow.logging_setup import error_summary

if TYPE_CHECKING:
    from mailflow.app import App


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    body: dict[str, Any]


def health_report(app: App, started: datetime) -> HealthReport:
    now = app.clock.now()
    settings = app.config.daemon
    thresholds = Thresholds(timedelta(minutes=settings.mailbox_stale_minutes),
                            timedelta(minutes=settings.outbox_stale_minutes))
    body: dict[str, Any] = {"checked_at": now.isoformat(), "started_at": started.isoformat(),
                            "database": {"reachable": True}, "partnerships": {}}
    try:
        with app.db.transaction() as s:
            s.execute(text("SELECT 1"))
            inputs = {rt.prefix: _inputs(s, rt.prefix, rt.source.name, now) for rt in app.runtimes()}
    except Exception as exc:  # noqa: BLE001 - an unreachable database is the answer, not an error
        body["database"] = {"reachable": False, "error": error_summary(exc)}
        body["healthy"] = False
        return HealthReport(False, body)
    healthy = True
    for prefix, found in inputs.items():
        problems = check_health(last_mailbox_read=found["last_mailbox_read"], oldest_unsent=found["oldest_unsent"],
                                now=now, thresholds=thresholds, started=started, mailbox=f"the {prefix} mailbox")
        healthy &= not problems
        body["partnerships"][prefix] = {
            **{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in found.items()},
            "problems": [{"code": p.code, "message": p.message} for p in problems],
        }
    body["healthy"] = healthy
    return HealthReport(healthy, body)


def _inputs(s: Any, prefix: str, source: str, now: datetime) -> dict[str, Any]:
    unsent = OutboxMessage.state.in_(("pending", "sending"))
    backlog, oldest_unsent = s.execute(
        select(func.count(), func.min(OutboxMessage.created_at))
        .where(OutboxMessage.partnership == prefix, unsent)).one()
    # Deadline rows carry no partnership of their own: joined through their case.
    oldest_due = s.scalar(select(func.min(Deadline.due_at)).join(Case, Case.id == Deadline.case_id)
                          .where(Case.partnership == prefix, Deadline.state == "pending", Deadline.due_at <= now))
    return {
        "last_mailbox_read": _utc(s.scalar(select(MailboxSync.last_success_at).where(
            MailboxSync.source == source, MailboxSync.folder == "INBOX"))),
        "outbox_backlog": int(backlog),
        "oldest_unsent": _utc(oldest_unsent),
        "oldest_due_deadline": _utc(oldest_due),
    }


def _utc(at: datetime | None) -> datetime | None:
    """SQLite's aggregates skip the column type's conversion: a naive UTC time comes back."""
    if at is None or at.tzinfo is not None:
        return at
    return at.replace(tzinfo=UTC)
