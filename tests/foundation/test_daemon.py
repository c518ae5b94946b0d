"""The daemon loop (APScheduler only wakes it) and the watchdog wired to the installation."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from pathlib import Path

from mailflow.app import App
from mailflow.clock import FixedClock
from mailflow.daemon import Daemon
from mailflow.sources.maildir import MaildirSource
from mailflow.watchdog import Watchdog
from tests.conftest import make_config, make_form


def test_daemon_wakes_on_its_schedule_and_processes_mail(tmp_path: Path, clock: FixedClock) -> None:
    config = make_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}",
                         extra="[daemon]\npoll_seconds = 1\nsweep_seconds = 1\n")
    app = App.open(config, clock)
    daemon = Daemon(app)
    thread = threading.Thread(target=daemon.run_forever, daemon=True)
    thread.start()
    try:
        MaildirSource(tmp_path / "mail").deliver(make_form(), "late.eml")
        deadline = time.monotonic() + 15  # a real scheduler: a bounded real wait, not simulated time
        while time.monotonic() < deadline and not list((tmp_path / "outbox").glob("SSP-2026-0001.*.eml")):
            time.sleep(0.1)
        assert list((tmp_path / "outbox").glob("SSP-2026-0001.*.eml")), "the scheduled pass never ran"
    finally:
        daemon.stop()
        thread.join(timeout=10)
        app.close()
    assert not thread.is_alive()


def test_watchdog_says_so_loudly_once_a_day(app: App, clock: FixedClock, tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    dog = Watchdog(app, started=clock.now())
    assert dog.check() == {"SSP": []}
    status = json.loads((app.config.var_dir / "health.json").read_text())
    assert status["healthy"] is True

    clock.advance(timedelta(minutes=31))  # the mailbox has never been read since the start
    with caplog.at_level("ERROR"):
        problems = dog.check()["SSP"]
    assert [p.code for p in problems] == ["mailbox-never-read"]
    assert any("has not been read successfully" in r.getMessage() for r in caplog.records)
    status = json.loads((app.config.var_dir / "health.json").read_text())
    assert status["healthy"] is False and status["problems"]["SSP"][0]["code"] == "mailbox-never-read"
    alerts = [p for p in (tmp_path / "outbox").glob("*.eml") if b"watchdog" in p.read_bytes()]
    assert len(alerts) == 1 and b"business.team@ssp.example.org" in alerts[0].read_bytes()

    clock.advance(timedelta(minutes=10))
    dog.check()
    assert len([p for p in (tmp_path / "outbox").glob("*.eml") if b"watchdog" in p.read_bytes()]) == 1

    app.sync_store.mark_success(app.runtime().source.name, "INBOX", clock.now())
    assert dog.check() == {"SSP": []}
