"""The watchdog wired to the installation: gather its inputs from the database, say problems loudly
(an error log line, `var/health.json`, and an email to the business team sent straight through any
transport that still works, since a stuck outbox is one of the problems)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from mailflow.composer import Envelope, compose
from mailflow.core.health import Problem, Thresholds, check_health
from mailflow.core.references import new_message_id, sign_message_id
from mailflow.db.models import MailboxSync, OutboxMessage
from mailflow.transports.base import OutgoingMail, SendError

if TYPE_CHECKING:
    from mailflow.app import App, PartnershipRuntime

log = logging.getLogger(__name__)


class Watchdog:
    def __init__(self, app: App, started: datetime) -> None:
        self.app = app
        self.started = started
        self._alerted: set[tuple[str, str, date]] = set()  # (partnership, problem, day): one email a day

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
                key = (rt.prefix, problem.code, now.date())
                if key not in self._alerted and self._email(rt, problem, now):
                    self._alerted.add(key)
        self._write_status(found, now)
        return found

    def _inputs(self, rt: PartnershipRuntime) -> tuple[datetime | None, datetime | None]:
        with self.app.db.transaction() as s:
            last_read = s.scalar(select(MailboxSync.last_success_at).where(
                MailboxSync.source == rt.source.name, MailboxSync.folder == "INBOX"))
            oldest = s.scalar(select(func.min(OutboxMessage.created_at)).where(
                OutboxMessage.partnership == rt.prefix, OutboxMessage.state.in_(("pending", "sending"))))
        if oldest is not None and oldest.tzinfo is None:  # SQLite's aggregate skips the type's conversion

            oldest = oldest.replace(tzinfo=UTC)
        return last_read, oldest

    def _email(self, rt: PartnershipRuntime, problem: Problem, now: datetime) -> bool:
        rendered = rt.renderer.render("watchdog_alert", {"partnership": rt.config, "problem": problem, "now": now})
        message_id = new_message_id(None, self.app.config.message_id_domain)
        env = Envelope(from_addr=rt.config.address, to=rt.config.business_team, message_id=message_id,
                       signature=sign_message_id(message_id, self.app.secret_key))
        raw = compose(rendered, env, now).as_bytes()
        mail = OutgoingMail(env.message_id, rt.config.address, env.recipients, raw)
        for other in [rt, *[r for r in self.app.runtimes() if r is not rt]]:
            try:
                other.transport.send(mail)
                return True
            except (SendError, OSError) as exc:
                log.error("%s: watchdog alert not sent through %s: %s", rt.prefix, other.transport.name, exc)
        return False

    def _write_status(self, found: dict[str, list[Problem]], now: datetime) -> None:
        status = {"checked_at": now.isoformat(), "healthy": not any(found.values()),
                  "problems": {k: [{"code": p.code, "message": p.message} for p in v] for k, v in found.items()}}
        path = self.app.config.var_dir / "health.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(status, indent=2))
