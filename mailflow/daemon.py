"""The daemon: one pass = ingest every mailbox, sweep due deadlines, drain the outbox.

APScheduler only wakes the loop (a poll interval, the digest's cron); the database holds all
state, so a restart loses nothing. Sources that can wait for mail (IMAP IDLE) wake it sooner.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from mailflow.logging_setup import error_summary
from mailflow.pipeline.ingest import ingest_source
from mailflow.pipeline.sender import drain
from mailflow.pipeline.sweep import sweep

if TYPE_CHECKING:
    from mailflow.app import App, PartnershipRuntime

log = logging.getLogger(__name__)


@dataclass
class PassReport:
    ingested: dict[str, dict[str, int]] = field(default_factory=dict)
    fired: dict[str, int] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def run_pass(app: App) -> PassReport:
    """One full pass over every partnership. A failing mailbox or transport is reported, and the
    other steps and partnerships still run (a dead mailbox must not stop the chasers)."""
    report = PassReport()
    for rt in app.runtimes():
        _step(report, rt, "mailbox", lambda rt=rt: _ingest(rt, report))
        now = app.clock.now()
        _step(report, rt, "deadlines", lambda rt=rt, now=now: report.fired.__setitem__(
            rt.prefix, len(sweep(rt, now).fired)))
        _step(report, rt, "outbox", lambda rt=rt, now=now: report.sent.__setitem__(
            rt.prefix, drain(rt, now).sent))
    return report


def _ingest(rt: PartnershipRuntime, report: PassReport) -> None:
    result = ingest_source(rt)
    report.ingested[rt.prefix] = result.outcomes
    rt.app.sync_store.mark_success(rt.source.name, "INBOX", rt.app.clock.now())


def _step(report: PassReport, rt: PartnershipRuntime, what: str, fn) -> None:  # type: ignore[no-untyped-def]
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - logged loudly; the loop goes on
        log.error("%s: %s step failed: %s", rt.prefix, what, error_summary(exc))  # no message text
        report.errors.append(f"{rt.prefix} {what}: {error_summary(exc)}")


class Daemon:
    def __init__(self, app: App) -> None:
        self.app = app
        self.wake = threading.Event()
        self.digest_due = threading.Event()
        self.stopping = threading.Event()
        self.scheduler = BackgroundScheduler(timezone="Europe/London")
        from mailflow.health import Watchdog

        self.watchdog = Watchdog(app, started=app.clock.now())

    def start(self) -> None:
        settings = self.app.config.daemon
        self.scheduler.add_job(self.wake.set, "interval", seconds=min(settings.poll_seconds, settings.sweep_seconds),
                               id="wake", coalesce=True, max_instances=1)
        days, _, hhmm = settings.digest_cron.partition(" ")
        hour, _, minute = hhmm.partition(":")
        self.scheduler.add_job(self._digest_time, CronTrigger(day_of_week=days, hour=int(hour), minute=int(minute or 0),
                                                              timezone="Europe/London"), id="digest")
        self.scheduler.start()

    def _digest_time(self) -> None:
        self.digest_due.set()
        self.wake.set()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    def run_forever(self) -> None:
        self.start()
        log.info("mailflow daemon started for %s", ", ".join(p.prefix for p in self.app.config.partnerships))
        try:
            while not self.stopping.is_set():
                self.wake.clear()
                run_pass(self.app)
                self.watchdog.check()
                if self.digest_due.is_set():
                    self.digest_due.clear()
                    from mailflow.pipeline.digest import send_digests

                    send_digests(self.app, self.app.clock.now())
                self._wait()
        finally:
            self.scheduler.shutdown(wait=False)

    def _wait(self) -> None:
        """Until the scheduler wakes us, or a mailbox that can wait (IMAP IDLE) sees new mail."""
        waiting = [rt.source for rt in self.app.runtimes() if getattr(rt.source, "can_wait", False)]
        if not waiting:
            self.wake.wait()
            return
        while not self.wake.is_set():
            started = time.monotonic()
            for source in waiting:
                try:
                    if source.wait_for_mail(timeout=max(1.0, 10.0 / len(waiting))):
                        return
                except Exception as exc:  # noqa: BLE001 - the next pass reconnects
                    log.error("waiting on %s failed: %s", source.name, error_summary(exc))
                    self.wake.wait(5)
                    return
            if time.monotonic() - started < 0.05:  # a source that returned at once: do not spin
                self.wake.wait(1)
