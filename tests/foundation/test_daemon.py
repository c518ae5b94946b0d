"""The daemon loop (APScheduler only wakes it) and the watchdog wired to the installation."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from mailflow.app import App
from mailflow.clock import FixedClock
from mailflow.daemon import Daemon
from mailflow.db.models import OutboxMessage
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


def test_watchdog_says_so_loudly_once_per_change(app: App, clock: FixedClock, tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
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
    [alert] = _alerts(app)   # through the outbox, to the business team
    assert alert.recipients == ["business.team@ssp.example.org"]
    assert alert.subject == "[mailflow] Attention: the SSP mailbox has not been read successfully since " \
        "mailflow started 31 minutes ago"

    clock.advance(timedelta(minutes=10))
    dog.check()
    assert len(_alerts(app)) == 1            # the same problem: no second mail

    app.sync_store.mark_success(app.runtime().source.name, "INBOX", clock.now())
    assert dog.check() == {"SSP": []}
    assert [a.subject for a in _alerts(app)][1:] == ["[mailflow] Watchdog: all clear"]
    clock.advance(timedelta(minutes=45))     # read once, then not again: a new problem, a new mail
    assert "mailbox-stale" in [p.code for p in dog.check()["SSP"]]   # (its alerts wait undrained, too)
    assert len(_alerts(app)) == 3 and _alerts(app)[-1].subject.startswith("[mailflow] Attention: the SSP mailbox")


def _alerts(app: App) -> list[OutboxMessage]:
    with app.db.transaction() as s:
        rows = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "watchdog_alert")
                         .order_by(OutboxMessage.id)).all()
        s.expunge_all()
        return list(rows)
