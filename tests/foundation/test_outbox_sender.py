"""The outbox sender: retries with backoff, fails permanently on 5xx, never sends twice after a
crash mid-send when the transport keeps its own record."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from mailflow.app import App
from mailflow.clock import FixedClock
from mailflow.db.models import OutboxMessage
from mailflow.pipeline.outbox import queue_mail
from mailflow.pipeline.sender import backoff, drain
from mailflow.transports.base import MailTransport, OutgoingMail, PermanentSendError, TransientSendError


class ScriptedTransport(MailTransport):
    def __init__(self, script: list[Exception | None]) -> None:
        self.script = script
        self.sent: list[str] = []
        self.record: set[str] = set()

    def send(self, mail: OutgoingMail) -> None:
        outcome = self.script.pop(0) if self.script else None
        if outcome is not None:
            raise outcome
        self.sent.append(mail.message_id)
        self.record.add(mail.message_id)

    def already_sent(self, message_id: str) -> bool | None:
        return message_id in self.record


def _queue(app: App, clock: FixedClock) -> str:
    rt = app.runtime()
    with app.db.transaction() as s:
        row = queue_mail(s, rt, kind="quarantine_notice", to=["business.team@ssp.example.org"], now=clock.now(),
                         context={"inbound": {"id": 1, "message_id": None, "received_at": clock.now(),
                                              "reason": "test"}})
        assert row is not None
        return row.message_id


def _row(app: App, message_id: str) -> OutboxMessage:
    with app.db.transaction() as s:
        return s.scalars(select(OutboxMessage).where(OutboxMessage.message_id == message_id)).one()


def test_transient_failures_are_retried_with_backoff(app: App, clock: FixedClock) -> None:
    transport = ScriptedTransport([TransientSendError("451 try later"), TransientSendError("421 closing")])
    rt = app.runtime()
    rt._transport = transport  # noqa: SLF001 - the runtime builds its transport from config; the test scripts this one
    mid = _queue(app, clock)
    assert drain(rt, clock.now()).retried == 1
    row = _row(app, mid)
    assert row.state == "pending" and row.attempts == 1 and row.next_attempt_at > clock.now()
    assert drain(rt, clock.now()).sent == 0  # not before its time
    clock.set(row.next_attempt_at)
    assert drain(rt, clock.now()).retried == 1
    clock.set(_row(app, mid).next_attempt_at)
    assert drain(rt, clock.now()).sent == 1
    assert transport.sent == [mid] and _row(app, mid).state == "sent"


def test_permanent_failure_marks_the_row_failed_and_tells_the_business_team(app: App, clock: FixedClock) -> None:
    from mailflow.pipeline.ingest import ingest_one
    from mailflow.sources.base import InboundMail
    from tests.conftest import make_form

    rt = app.runtime()
    transport = ScriptedTransport([PermanentSendError("550 no such user")])
    rt._transport = transport  # noqa: SLF001 - the runtime builds its transport from config; the test scripts this one
    ingest_one(rt, InboundMail(make_form(), "test:1"))  # an acknowledgement and an escalation queued
    result = drain(rt, clock.now())
    assert result.failed == 1
    with app.db.transaction() as s:
        rows = s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        failed = [r for r in rows if r.state == "failed"]
        notices = [r for r in rows if r.kind == "delivery_failure"]
        assert len(failed) == 1 and "550" in (failed[0].last_error or "")
        assert len(notices) == 1 and notices[0].recipients == ["business.team@ssp.example.org"]
    drain(rt, clock.now())
    assert any(b"could not be delivered" in m for m in [r.raw for r in rows if r.kind == "delivery_failure"])


def test_crash_after_sending_is_not_sent_twice(app: App, clock: FixedClock) -> None:
    """The attempt is committed before the send; a row found mid-send asks the transport's record."""
    rt = app.runtime()
    transport = ScriptedTransport([])
    rt._transport = transport  # noqa: SLF001 - the runtime builds its transport from config; the test scripts this one
    mid = _queue(app, clock)
    with app.db.transaction() as s:  # as a worker that died after the transport accepted the message
        row = s.scalars(select(OutboxMessage).where(OutboxMessage.message_id == mid)).one()
        row.state, row.attempts = "sending", 1
    transport.record.add(mid)
    clock.advance(timedelta(minutes=10))
    assert drain(rt, clock.now()).sent == 1
    assert transport.sent == []  # recognised from the transport's record, not sent again


def test_backoff_grows_and_honours_retry_after() -> None:
    assert backoff(1) < backoff(4) <= timedelta(hours=1, minutes=12)
    assert backoff(1, retry_after=600) >= timedelta(seconds=600)
