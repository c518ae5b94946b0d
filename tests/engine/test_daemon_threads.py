"""A stuck mailbox never delays an escalation (issue 11, item 2): the daemon reads each mailbox in
its own thread, and the deadlines and the outbox in another."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import select

from mailflow.app import App
from mailflow.clock import FixedClock, parse_instant
from mailflow.daemon import Daemon
from mailflow.db.models import OutboxMessage
from mailflow.sources.base import InboundMail, MailboxSource, Outcome
from tests.conftest import make_config
from tests.engine.conftest import START, Harness


class StuckMailbox(MailboxSource):
    """A mailbox whose server hangs in the middle of a fetch until released."""

    name = "stuck"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def fetch(self) -> Iterator[InboundMail]:
        self.entered.set()
        self.release.wait(60)
        return iter(())

    def settle(self, mail: InboundMail, outcome: Outcome, reason: str | None = None) -> None:
        raise AssertionError("nothing to settle")


def _wait(predicate, seconds: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    """A real daemon runs on a real scheduler: a bounded real wait, as in tests/foundation/test_daemon.py."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_hanging_mailbox_does_not_hold_back_a_due_escalation(tmp_path: Path) -> None:
    clock = FixedClock(parse_instant(START))
    config = make_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}",
                         extra="[daemon]\npoll_seconds = 1\nsweep_seconds = 1\n")
    app = App.open(config, clock)
    h = Harness(app, clock)
    ref = h.open_case()
    stuck = StuckMailbox()
    h.rt._source = stuck  # noqa: SLF001 - the runtime builds its source from config; the test hands it this one
    clock.set(parse_instant("2026-12-31T10:00:00"))   # Stage 1 ran out on 30 Dec: the escalation is due

    def escalation_sent() -> bool:
        with app.db.transaction() as s:
            rows = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "escalation",
                                                         OutboxMessage.state == "sent")).all()
            return any("Stage 2" in r.subject for r in rows)

    daemon = Daemon(app)
    thread = threading.Thread(target=daemon.run_forever, daemon=True)
    thread.start()
    try:
        assert stuck.entered.wait(20), "the mailbox was never read"
        assert _wait(escalation_sent), "the escalation waited for the mailbox"
        assert not stuck.release.is_set()                 # the mailbox is still hanging
        assert h.case(ref)["stage"] == 2
    finally:
        stuck.release.set()
        daemon.stop()
        thread.join(timeout=20)
        app.close()
    assert not thread.is_alive(), "the daemon did not stop"


def test_a_failing_step_logs_one_line_without_sql_or_parameters(caplog) -> None:  # type: ignore[no-untyped-def]
    import logging
    from types import SimpleNamespace

    from sqlalchemy.exc import IntegrityError

    from mailflow.daemon import PassReport, _step

    class Orig(Exception):
        diag = SimpleNamespace(constraint_name="uq_inbound_source")

    def conflict() -> None:
        raise IntegrityError("INSERT INTO inbound_messages (raw) VALUES (%(raw)s)",
                             {"raw": "Name of adult: Ada Testperson"}, Orig("duplicate key value"))

    report = PassReport()
    with caplog.at_level(logging.ERROR):
        _step(report, SimpleNamespace(prefix="SSP"), "mailbox", conflict)  # type: ignore[arg-type]
    assert [r.getMessage() for r in caplog.records] == [
        "SSP: mailbox step failed: IntegrityError (Orig) on uq_inbound_source"]
    assert report.errors == ["SSP mailbox: IntegrityError (Orig) on uq_inbound_source"]
