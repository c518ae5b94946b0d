"""The watchdog wired to the installation: gather its inputs from the database, say problems loudly
(an error log line, `var/health.json`, and an email to the business team).

The email goes through the outbox, once per change of a partnership's problem set however many
workers watch: each change is a schedule row (partnership, "watchdog", sequence number) claimed in
the transaction that queues the mail, so the worker that records a change sends its alert and the
others find the change recorded. A problem that clears is recorded too (a short all-clear mail),
so its return is a change again. A worker that started less than the mailbox threshold ago and
has never seen the mailbox read cannot tell a healthy mailbox from a dead one: it records nothing.
The digest shows the latest recorded problems (mailflow/queries/overview.py)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from mailflow.core.health import Problem, Thresholds, check_health
from mailflow.db.models import MailboxSync, OutboxMessage, ScheduleClaim
from mailflow.logging_setup import error_summary
from mailflow.pipeline.notices import business_team
from mailflow.pipeline.outbox import queue_mail
from mailflow.pipeline.schedules import claim

if TYPE_CHECKING:
    from mailflow.app import App, PartnershipRuntime

log = logging.getLogger(__name__)
KIND = "watchdog"


class Watchdog:
    def __init__(self, app: App, started: datetime) -> None:
        self.app = app
        self.started = started

    def check(self) -> dict[str, list[Problem]]:
        now = self.app.clock.now()
        settings = self.app.config.daemon
        thresholds = Thresholds(timedelta(minutes=settings.mailbox_stale_minutes),
                                timedelta(minutes=settings.outbox_stale_minutes))
        found: dict[str, list[Problem]] = {}
        for rt in self.app.runtimes():
            last_read, oldest = self._inputs(rt)
            problems = check_health(last_mailbox_read=last_read, oldest_unsent=oldest, now=now,
                                    thresholds=thresholds, started=self.started,
                                    mailbox=f"the {rt.prefix} mailbox")
            found[rt.prefix] = problems
            for problem in problems:
                log.error("%s: %s", rt.prefix, problem.message)
            if last_read is None and now - self.started < thresholds.mailbox_stale:
                continue   # too early to tell a mailbox not yet read from one that cannot be
            try:
                self._record_change(rt, problems, now)
            except Exception as exc:  # noqa: BLE001 - the log line and health.json still say it
                log.error("%s: watchdog alert not queued: %s", rt.prefix, error_summary(exc))
        self._write_status(found, now)
        return found

    def _record_change(self, rt: PartnershipRuntime, problems: list[Problem], now: datetime) -> bool:
        """Claim the next change of the partnership's problem set and queue its mail; False when
        nothing changed or another worker recorded the change first."""
        codes = sorted(p.code for p in problems)
        with self.app.db.transaction() as s:
            last = s.scalars(select(ScheduleClaim).where(ScheduleClaim.partnership == rt.prefix,
                                                         ScheduleClaim.kind == KIND)
                             .order_by(ScheduleClaim.id.desc()).limit(1)).first()
            before = sorted(last.detail.get("codes", [])) if last is not None else []
            if codes == before:
                return False
            seq = int(last.period) + 1 if last is not None else 1
            detail = {"codes": codes, "problems": [
                {"code": p.code, "message": p.message, "since": p.since.isoformat() if p.since else None}
                for p in problems]}
            if not claim(s, rt.prefix, KIND, f"{seq:010d}", now, now, detail=detail):
                return False   # another worker recorded this change
            new = [p for p in problems if p.code not in before]
            cleared = [c for c in before if c not in codes]
            queue_mail(s, rt, kind="watchdog_alert", to=business_team(rt), now=now,
                       context={"now": now, "problems": problems, "new": new, "cleared": cleared})
            return True

    def _inputs(self, rt: PartnershipRuntime) -> tuple[datetime | None, datetime | None]:
        with self.app.db.transaction() as s:
            last_read = s.scalar(select(MailboxSync.last_success_at).where(
                MailboxSync.source == rt.source.name, MailboxSync.folder == "INBOX"))
            oldest = s.scalar(select(func.min(OutboxMessage.created_at)).where(
                OutboxMessage.partnership == rt.prefix, OutboxMessage.state.in_(("pending", "sending"))))
        if oldest is not None and oldest.tzinfo is None:  # SQLite's aggregate skips the type's conversion

            oldest = oldest.replace(tzinfo=UTC)
        return last_read, oldest

    def _write_status(self, found: dict[str, list[Problem]], now: datetime) -> None:
        status = {"checked_at": now.isoformat(), "healthy": not any(found.values()),
                  "problems": {k: [{"code": p.code, "message": p.message} for p in v] for k, v in found.items()}}
        path = self.app.config.var_dir / "health.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(status, indent=2))
