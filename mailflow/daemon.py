"""The daemon: each mailbox is read in its own thread; one more thread sweeps due deadlines and
drains the outbox. `run_pass` (`mailflow run --once`) does the same steps once, in order.

APScheduler only wakes the loops (the poll and sweep intervals, the digest's cron); the database
holds all state, so a restart loses nothing. Sources that can wait for mail (IMAP IDLE) wake
their reader sooner.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler

from mailflow import metrics
from mailflow.logging_setup import error_summary
from mailflow.pipeline.ingest import ingest_source
from mailflow.pipeline.sender import drain
from mailflow.pipeline.sweep import sweep
from mailflow.systemd_notify import Systemd

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
        _deadlines_and_outbox(report, rt)
    return report


def _ingest(rt: PartnershipRuntime, report: PassReport, stop: threading.Event | None = None) -> None:
    result = metrics.timed(metrics.INGEST_SECONDS, rt.prefix, ingest_source, rt, None, stop)
    report.ingested[rt.prefix] = result.outcomes
    rt.app.sync_store.mark_success(rt.source.name, "INBOX", rt.app.clock.now())
    metrics.mailbox_read(rt.prefix, rt.app.clock.now())


def _step(report: PassReport, rt: PartnershipRuntime, what: str, fn) -> None:  # type: ignore[no-untyped-def]
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - logged loudly; the loop goes on
        # error_summary: a database error's own text carries its SQL parameters (message text).
        log.error("%s: %s step failed: %s", rt.prefix, what, error_summary(exc))
        metrics.STEP_ERRORS.labels(rt.prefix, what).inc()
        report.errors.append(f"{rt.prefix} {what}: {error_summary(exc)}")


def sweep_and_send(app: App, runtimes: list[PartnershipRuntime]) -> PassReport:
    """The deadline half of a pass: fire what is due, then drain the outbox, for every partnership."""
    report = PassReport()
    for rt in runtimes:
        _deadlines_and_outbox(report, rt)
    return report


def _deadlines_and_outbox(report: PassReport, rt: PartnershipRuntime) -> None:
    now = rt.app.clock.now()
    _step(report, rt, "deadlines", lambda: report.fired.__setitem__(
        rt.prefix, len(metrics.timed(metrics.SWEEP_SECONDS, rt.prefix, sweep, rt, now).fired)))
    _step(report, rt, "outbox", lambda: report.sent.__setitem__(rt.prefix, drain(rt, now).sent))


class Daemon:
    """One thread per partnership mailbox, and this thread for the deadlines, the outbox, the
    watchdog and the digest: a mailbox that hangs (a slow server, a message that takes long)
    never delays an escalation, and an escalation being sent never delays reading mail.
    Each thread works in its own transactions; the database is what they share."""

    JOIN_SECONDS = 15.0

    def __init__(self, app: App) -> None:
        self.app = app
        self.wake = threading.Event()          # the deadline/outbox loop
        self.stopping = threading.Event()
        self.runtimes = app.runtimes()
        self.mail_due = {rt.prefix: threading.Event() for rt in self.runtimes}
        self.readers: list[threading.Thread] = []
        self.started = app.clock.now()
        self.systemd = Systemd()
        self.scheduler = BackgroundScheduler(timezone="Europe/London")
        from mailflow.watchdog import Watchdog

        self.watchdog = Watchdog(app, started=app.clock.now())

    def start(self) -> None:
        settings = self.app.config.daemon
        logging.getLogger("apscheduler").setLevel(logging.WARNING)   # a line per wake-up says nothing
        self.scheduler.add_job(self.wake.set, "interval", seconds=settings.sweep_seconds,
                               id="sweep", coalesce=True, max_instances=1)
        self.scheduler.add_job(self._poll_time, "interval", seconds=settings.poll_seconds,
                               id="poll", coalesce=True, max_instances=1)
        # Only a wake-up: which digest period is due, and whether it went, is the database's (schedules).
        # The trigger is the one built when the config loaded (mailflow/cron.py): what doctor accepted runs.
        self.scheduler.add_job(self.wake.set, settings.digest_cron.trigger, id="digest")
        self.scheduler.start()
        for rt in self.runtimes:
            rt.source  # noqa: B018 - built here, once, before two threads could both build it
            reader = threading.Thread(target=self._read_mailbox, args=(rt,), name=f"mailbox-{rt.prefix}", daemon=True)
            reader.start()
            self.readers.append(reader)

    def _poll_time(self) -> None:
        for due in self.mail_due.values():
            due.set()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        self._poll_time()

    def run_forever(self) -> None:
        self.start()
        log.info("mailflow daemon started for %s", ", ".join(p.prefix for p in self.app.config.partnerships))
        try:
            while not self.stopping.is_set():
                self.wake.clear()
                report = sweep_and_send(self.app, self.runtimes)
                self._check_health()
                self.systemd.ready(f"{len(report.errors)} step(s) failed" if report.errors else "running")
                self._idle()
        finally:
            self.stopping.set()
            self.systemd.stopping()
            self._poll_time()
            self.scheduler.shutdown(wait=False)
            for reader in self.readers:
                reader.join(self.JOIN_SECONDS)
                if reader.is_alive():  # stuck in its server: a daemon thread, it ends with the process
                    log.warning("%s did not stop within %.0f s", reader.name, self.JOIN_SECONDS)
            log.info("mailflow daemon stopped")

    def _idle(self) -> None:
        """Until woken; under a systemd watchdog, pinging it meanwhile from this (the deadline) loop,
        so a loop stuck in a pass stops the pings and systemd restarts the service."""
        self.systemd.watchdog()
        while not self.wake.wait(self.systemd.ping_seconds):
            self.systemd.watchdog()

    def _check_health(self) -> None:
        try:
            self.watchdog.check()
        except Exception as exc:  # noqa: BLE001 - the deadlines must go on
            log.error("watchdog failed: %s", error_summary(exc))
        self.scheduled_sends()

    def scheduled_sends(self) -> list[str]:
        """The digests due now (a missed one late, once), each claimed in the database so one
        worker of many sends it. Returns the partnerships this daemon sent one for."""
        from mailflow.pipeline.digest import send_due_digests

        try:
            sent = send_due_digests(self.app, self.app.clock.now())
        except Exception as exc:  # noqa: BLE001 - the deadlines must go on
            log.error("digest failed: %s", error_summary(exc))
            return []
        if sent:
            self.wake.set()   # out through the outbox now, not at the next sweep
        return sent

    def _read_mailbox(self, rt: PartnershipRuntime) -> None:
        due = self.mail_due[rt.prefix]
        while not self.stopping.is_set():
            due.clear()
            report = PassReport()
            _step(report, rt, "mailbox", lambda report=report: _ingest(rt, report, self.stopping))
            if sum(report.ingested.get(rt.prefix, {}).values()):
                self.wake.set()   # acknowledgements go now, not at the next sweep
            self._wait_for_mail(rt, due)

    def _wait_for_mail(self, rt: PartnershipRuntime, due: threading.Event) -> None:
        """Until the poll interval, a stop, or a mailbox that can wait (IMAP IDLE) sees new mail."""
        source = rt.source
        if not getattr(source, "can_wait", False):
            due.wait()
            return
        while not due.is_set():
            started = time.monotonic()
            try:
                if source.wait_for_mail(timeout=10.0):
                    return
            except Exception as exc:  # noqa: BLE001 - the next read reconnects
                log.error("%s: waiting on %s failed: %s", rt.prefix, source.name, error_summary(exc))
                due.wait(5)
                return
            if time.monotonic() - started < 0.05:  # a source that returned at once: do not spin
                due.wait(1)
