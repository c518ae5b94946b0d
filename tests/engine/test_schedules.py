"""Scheduled sends are the database's: one digest per period across any number of workers, and
a period missed while no daemon ran is sent late, once, on start (only the latest one)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import select

from mailflow.app import App
from mailflow.clock import FixedClock, parse_instant
from mailflow.daemon import Daemon
from mailflow.db.models import OutboxMessage, ScheduleClaim
from mailflow.pipeline.schedules import cron_trigger, due_period, latest_due
from tests.conftest import make_config

T = parse_instant
WEEKDAYS_8AM = "0 8 * * 1-5"


def test_the_latest_period_due_and_whether_it_is_late() -> None:
    trigger = cron_trigger(WEEKDAYS_8AM)
    assert latest_due(trigger, T("2026-12-21T08:00:00")) == T("2026-12-21T08:00:00")
    assert latest_due(trigger, T("2026-12-21T07:59:59")) == T("2026-12-18T08:00:00")   # Friday's
    assert latest_due(trigger, T("2026-12-20T12:00:00")) == T("2026-12-18T08:00:00")   # a Sunday
    summer = latest_due(trigger, T("2026-07-01T09:00:00"))
    assert summer is not None and summer.isoformat() == "2026-07-01T07:00:00+00:00"   # 8am BST
    on_time = due_period(trigger, T("2026-12-21T08:14:00"))
    late = due_period(trigger, T("2026-12-21T08:16:00"))
    assert on_time is not None and not on_time.late
    assert late is not None and late.late and late.due_at == T("2026-12-21T08:00:00")
    assert latest_due(cron_trigger("mon-fri 08:00"), T("2026-12-21T09:00:00")) == T("2026-12-21T08:00:00")
    every_minute = latest_due(cron_trigger("* * * * *"), T("2026-12-21T09:00:30"))
    assert every_minute == T("2026-12-21T09:00:00")


class Worker:
    """One daemon process's state: its own App (engine, connections) and clock on the shared database."""

    def __init__(self, tmp_path: Path, db_url: str, at: str) -> None:
        self.clock = FixedClock(T(at))
        self.app = App.open(make_config(tmp_path, db_url), self.clock)
        self.daemon = Daemon(self.app)

    def close(self) -> None:
        self.app.close()


@pytest.fixture
def workers(tmp_path: Path, pg_url: str) -> Iterator[list[Worker]]:
    made = [Worker(tmp_path, pg_url, "2026-12-18T07:00:00") for _ in range(3)]
    yield made
    for w in made:
        w.close()


def _all_at_once(workers: list[Worker], at: str) -> list[list[str]]:
    """Every worker's scheduled-send step at the same instant, started together."""
    barrier = threading.Barrier(len(workers))
    results: list[list[str]] = [[] for _ in workers]

    def one(i: int, w: Worker) -> None:
        w.clock.set(T(at))
        barrier.wait()
        results[i] = w.daemon.scheduled_sends()

    threads = [threading.Thread(target=one, args=(i, w)) for i, w in enumerate(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def _digests(app: App) -> list[OutboxMessage]:
    with app.db.transaction() as s:
        rows = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "digest").order_by(OutboxMessage.id)).all()
        s.expunge_all()
        return list(rows)


def _text(row: OutboxMessage) -> str:
    body = message_from_bytes(row.raw, policy=policy.default).get_body(("plain",))
    assert body is not None
    return str(body.get_content())   # type: ignore[attr-defined]


@pytest.mark.postgres
def test_three_daemons_across_a_digest_minute_send_one_digest(workers: list[Worker]) -> None:
    app = workers[0].app
    # Friday 8am passes with three daemons running: one digest, on time.
    assert sum(map(len, _all_at_once(workers, "2026-12-18T08:00:05"))) == 1
    for minute in ("2026-12-18T08:01:00", "2026-12-21T07:59:30"):   # later passes, and the Monday before 8am
        assert _all_at_once(workers, minute) == [[], [], []]
    # Monday 8am: again one, whoever wins.
    assert sum(map(len, _all_at_once(workers, "2026-12-21T08:00:01"))) == 1
    assert _all_at_once(workers, "2026-12-21T08:00:30") == [[], [], []]
    digests = _digests(app)
    assert len(digests) == 2 and all(r.recipients == ["business.team@ssp.example.org"] for r in digests)
    assert [r.created_at for r in digests] == [T("2026-12-18T08:00:05"), T("2026-12-21T08:00:01")]
    assert not any("late" in _text(r) for r in digests)
    with app.db.transaction() as s:
        claims = s.scalars(select(ScheduleClaim).order_by(ScheduleClaim.id)).all()
        assert [(c.partnership, c.kind, c.due_at, c.late) for c in claims] == [
            ("SSP", "digest", T("2026-12-18T08:00:00"), False), ("SSP", "digest", T("2026-12-21T08:00:00"), False)]


@pytest.mark.postgres
def test_a_daemon_started_after_the_minute_sends_the_late_digest_once(workers: list[Worker]) -> None:
    first, second, third = workers
    assert sum(map(len, _all_at_once(workers, "2026-12-16T08:00:00"))) == 1   # Wednesday's went
    # Nothing ran from Wednesday 9am until Monday 9:30: Thursday's, Friday's and Monday's 8am were
    # missed. The first daemon to start sends Monday's, saying it is late; not a backlog of three.
    first.clock.set(T("2026-12-21T09:30:00"))
    assert first.daemon.scheduled_sends() == ["SSP"]
    assert first.daemon.scheduled_sends() == []
    second.clock.set(T("2026-12-21T09:45:00"))
    third.clock.set(T("2026-12-21T10:00:00"))
    assert second.daemon.scheduled_sends() == [] and third.daemon.scheduled_sends() == []
    digests = _digests(first.app)
    assert len(digests) == 2
    late = _text(digests[-1])
    assert "This digest is late: it was due Monday 21 December 2026, 8am, when mailflow was not running." in late
    assert "late" not in _text(digests[0])
    with first.app.db.transaction() as s:
        claim = s.scalars(select(ScheduleClaim).order_by(ScheduleClaim.id.desc())).first()
        assert claim is not None and claim.late and claim.claimed_at == T("2026-12-21T09:30:00")


def test_a_crash_before_the_commit_leaves_the_period_to_the_next_pass(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    w = Worker(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", "2026-12-21T08:00:10")
    try:
        import mailflow.pipeline.digest as digest

        def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
            raise OSError("disk full")

        monkeypatch.setattr(digest, "queue_mail", broken)
        assert w.daemon.scheduled_sends() == []          # logged; the claim rolled back with the mail
        monkeypatch.undo()
        w.clock.set(T("2026-12-21T08:01:10"))
        assert w.daemon.scheduled_sends() == ["SSP"]
        assert len(_digests(w.app)) == 1
    finally:
        w.close()


def test_crontab_weekday_numbers_mean_what_cron_means() -> None:
    # APScheduler 3 alone would read 1-5 as Tuesday to Saturday.
    assert latest_due(cron_trigger("0 8 * * 1-5"), T("2026-12-19T12:00:00")) == T("2026-12-18T08:00:00")
    assert latest_due(cron_trigger("30 17 * * 0"), T("2026-12-21T12:00:00")) == T("2026-12-20T17:30:00")
    assert latest_due(cron_trigger("30 17 * * 7"), T("2026-12-21T12:00:00")) == T("2026-12-20T17:30:00")
    assert latest_due(cron_trigger("0 9 * * mon,thu"), T("2026-12-23T12:00:00")) == T("2026-12-21T09:00:00")


@pytest.mark.postgres
def test_three_workers_send_one_watchdog_alert_per_change(workers: list[Worker]) -> None:
    from datetime import timedelta

    from mailflow.watchdog import Watchdog

    started = T("2026-12-18T07:00:00")
    dogs = [Watchdog(w.app, started=started) for w in workers]

    def all_check(at: str) -> None:
        barrier = threading.Barrier(len(workers))

        def one(w: Worker, dog: Watchdog) -> None:
            w.clock.set(T(at))
            barrier.wait()
            dog.check()

        threads = [threading.Thread(target=one, args=(w, d)) for w, d in zip(workers, dogs, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)

    def alerts() -> list[str]:
        with workers[0].app.db.transaction() as s:
            return list(s.scalars(select(OutboxMessage.subject).where(OutboxMessage.kind == "watchdog_alert")
                                  .order_by(OutboxMessage.id)))

    all_check("2026-12-18T07:10:00")
    assert alerts() == []                                    # too early to tell
    all_check("2026-12-18T07:40:00")                         # never read in 40 minutes: one alert, not three
    assert len(alerts()) == 1 and alerts()[0].startswith("[mailflow] Attention: the SSP mailbox")
    all_check("2026-12-18T07:45:00")
    assert len(alerts()) == 1
    from mailflow.pipeline.digest import render_digests

    digest = render_digests(workers[0].app, T("2026-12-18T07:46:00"))[0]   # the digest shows it too
    assert [w.code for w in digest.overview.watchdog] == ["mailbox-never-read"]
    assert "Watchdog warnings\n  ! the SSP mailbox has not been read successfully" in digest.text
    app = workers[0].app
    app.sync_store.mark_success(app.runtime().source.name, "INBOX", T("2026-12-18T07:50:00"))
    with app.db.transaction() as s:   # the alert went (the outbox is not what this test is about)
        s.query(OutboxMessage).update({"state": "sent"})
    all_check("2026-12-18T07:50:00")
    assert alerts()[1:] == ["[mailflow] Watchdog: all clear"]
    all_check(str((T("2026-12-18T07:50:00") + timedelta(minutes=31)).isoformat()))
    assert len(alerts()) == 3 and alerts()[2].startswith("[mailflow] Attention: the SSP mailbox was last read")
