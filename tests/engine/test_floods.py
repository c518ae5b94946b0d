"""Floods cost nothing: over the per-sender limit a message is held (quarantined with the reason),
acts on nothing, is answered by nothing, and the business team hears once per sender per hour,
whichever worker sees the flood first. The sender's address is never logged."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from mailflow.db.models import InboundMessage, OutboxMessage
from mailflow.pipeline.floods import HELD_REASON, tell_business_team_once
from mailflow.sources.base import Outcome
from tests.conftest import make_message
from tests.engine.conftest import ASC_MANAGER, BUSINESS, Harness, open_harness, recipients

LIMIT = 20  # the default [daemon] sender_messages_per_hour


def _business_notices(h: Harness) -> list[OutboxMessage]:
    return [r for r in h.outbox() if BUSINESS in recipients(r)]


def test_a_flood_of_200_is_held_without_a_notice_each(h_any: Harness, caplog: pytest.LogCaptureFixture) -> None:
    h = h_any
    ref = h.open_case()
    before_business = len(_business_notices(h))
    thread = h.last_sent(ref, ASC_MANAGER).message_id
    caplog.set_level(logging.DEBUG)
    # The manager's ordinary allowance for the hour: notes, acted on as usual.
    for i in range(LIMIT):
        h.clock.advance(timedelta(seconds=5))
        outcome, _ = h.ingest(make_message(ASC_MANAGER, f"Re: [{ref}] Stage 1", f"#note update {i}",
                                           in_reply_to=thread))
        assert outcome == Outcome.PROCESSED
    before = h.snapshot(ref)
    outbox_before = len(h.outbox())
    # Then 200 more within the same hour (a forwarding loop resending a reply): every one of them held.
    held = []
    for i in range(200):
        h.clock.advance(timedelta(seconds=5))
        held.append(h.ingest(make_message(ASC_MANAGER, f"Re: [{ref}] Stage 1", f"#escalate loop {i}",
                                          in_reply_to=thread)))
    assert held == [(Outcome.QUARANTINED, HELD_REASON)] * 200
    # None acted: the case, its deadlines and its record stand as they were.
    assert h.snapshot(ref) == before
    assert h.events(ref, "escalated") == [] and h.events(ref, "command_refused") == []
    assert len(h.events(ref, "note")) == LIMIT
    # At most one notice to the business team about the whole flood: the summary.
    new = h.outbox()[outbox_before:]
    assert [r.kind for r in new] == ["flood_summary"]
    assert len(_business_notices(h)) == before_business + 1
    assert recipients(new[0]) == {BUSINESS} and new[0].case_id is None
    assert ASC_MANAGER in new[0].raw.decode() and ASC_MANAGER not in new[0].subject
    with h.app.db.transaction() as s:
        reasons = s.scalars(select(InboundMessage.reason).where(InboundMessage.outcome == "quarantined")).all()
    assert reasons == [HELD_REASON] * 200
    # No sender address in the logs at any level.
    assert caplog.records and ASC_MANAGER not in caplog.text
    assert ASC_MANAGER.split("@")[0] not in caplog.text


def test_one_summary_per_sender_per_hour(tmp_path: Path, sqlite_url: str) -> None:
    h = open_harness_with_limit(tmp_path, sqlite_url, limit=3)
    start = h.clock.now()

    def send(sender: str, at: timedelta, n: int) -> list[Outcome]:
        h.clock.set(start + at)
        out = []
        for _ in range(n):
            h.clock.advance(timedelta(seconds=10))
            # About no case of ours: each under the limit is quarantined with its own notice.
            out.append(h.ingest(make_message(sender, "Re: [SSP-2026-9999] Stage 1", "a loop"))[0])
        return out

    try:
        other = "someone.else@example.net"
        assert send(ASC_MANAGER, timedelta(0), 6) == [Outcome.QUARANTINED] * 6
        send(other, timedelta(minutes=1), 5)
        send(ASC_MANAGER, timedelta(minutes=40), 3)
        summaries = h.outbox(kind="flood_summary")
        # One for each sender in the 10:00 hour, though both went on flooding.
        assert len(summaries) == 2 and len({r.message_id for r in summaries}) == 2
        assert len(h.outbox(kind="quarantine_notice")) == 3 + 3   # the ones under the limit only
        # Still flooding in the next hour: one more summary then, and only one.
        send(ASC_MANAGER, timedelta(minutes=65), 5)
        assert len(h.outbox(kind="flood_summary")) == 3
        assert len(h.outbox(kind="quarantine_notice")) == 6
    finally:
        h.app.close()


def open_harness_with_limit(tmp_path: Path, db_url: str, limit: int) -> Harness:
    from mailflow.app import App
    from mailflow.clock import FixedClock, parse_instant
    from tests.conftest import make_config
    from tests.engine.conftest import START

    clock = FixedClock(parse_instant(START))
    config = make_config(tmp_path, db_url, extra=f"[daemon]\nsender_messages_per_hour = {limit}\n")
    return Harness(App.open(config, clock), clock)


@pytest.mark.postgres
def test_two_workers_crossing_the_limit_at_once_send_one_summary(tmp_path: Path, pg_url: str,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """Worker A has queued the summary but not committed when worker B, seeing the same flood,
    tries too: B waits on the outbox's unique Message-ID, then finds it taken, and carries on."""
    h = open_harness(tmp_path, pg_url)
    caplog.set_level(logging.INFO, logger="mailflow.pipeline.floods")
    try:
        h.ingest(make_message(ASC_MANAGER, "Hello", "one"))
        with h.app.db.transaction() as s:
            inbound_id = s.scalars(select(InboundMessage.id)).one()
        outcome: dict[str, object] = {}
        with h.app.db.transaction() as a:
            assert tell_business_team_once(a, h.rt, a.get(InboundMessage, inbound_id), h.clock.now())
            a_pid = a.execute(text("SELECT pg_backend_pid()")).scalar_one()

            def worker_b() -> None:
                try:
                    with h.app.db.transaction() as b:
                        outcome["b"] = tell_business_team_once(b, h.rt, b.get(InboundMessage, inbound_id),
                                                               h.clock.now())
                except Exception as exc:  # noqa: BLE001 - reported below
                    outcome["b"] = exc

            thread = threading.Thread(target=worker_b)
            thread.start()
            _wait_until_blocked_by(a, a_pid)
        thread.join(timeout=30)
        assert outcome == {"b": False}
        assert "already queued by another worker" in caplog.text   # B lost the insert race, quietly
        assert len(h.outbox(kind="flood_summary")) == 1
    finally:
        h.app.close()


def _wait_until_blocked_by(s, pid: int) -> None:  # type: ignore[no-untyped-def]
    """B's INSERT blocks behind A's uncommitted row: wait (on the database, not the clock) until
    PostgreSQL shows a backend blocked by A, so that A commits while B is in the race."""
    with s.get_bind().connect() as conn:
        for _ in range(600):
            waiting = conn.execute(text("SELECT count(*) FROM pg_stat_activity "
                                        "WHERE :pid = ANY(pg_blocking_pids(pid))"), {"pid": pid}).scalar()
            if waiting:
                return
            conn.execute(text("SELECT pg_sleep(0.05)"))
            conn.commit()
    raise AssertionError("worker B never reached the outbox insert")
