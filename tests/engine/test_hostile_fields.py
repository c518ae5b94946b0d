"""Nothing in a message can block the mailbox (issue 11, item 3): a field too long for its column,
a NUL, a broken charset, or a database that refuses the record, and the message is quarantined
(or, at worst, left in place) while the form behind it opens its case in the same pass."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from mailflow.db.bounds import fit
from mailflow.db.models import Case, Event, InboundMessage, OutboxMessage, Participant
from mailflow.pipeline import ingest
from mailflow.pipeline.ingest import ingest_source
from tests.conftest import make_form
from tests.engine.conftest import Harness

LONG_ID = "<" + "m" * 5000 + "@example.org>"
LONG_SENDER = "s" * 2000 + "@gwh.nhs.example.org"


def _hostile(message_id: str = LONG_ID, sender: str = LONG_SENDER) -> bytes:
    """A pro-forma whose identifying fields are absurd: built by hand (the email package folds)."""
    form = make_form(LONG_SENDER).decode()
    body = form.split("\n\n", 1)[1]
    return (f"From: Jo Example <{sender}>\r\nTo: safeguarding@ssp.example.org\r\n"
            f"Subject: Escalation form {'x' * 3000}\x00\r\nMessage-ID: {message_id}\r\n"
            f"Date: Mon, 21 Dec 2026 09:55:00 +0000\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}").encode("utf-8", "surrogateescape")


def test_oversized_fields_are_cut_to_their_columns_and_the_next_form_still_opens(h_any: Harness) -> None:
    h = h_any
    h.deliver(_hostile(), make_form())
    result = ingest_source(h.rt)
    assert result.total == 2, result.outcomes
    assert h.maildir_new() == []
    with h.app.db.transaction() as s:
        rows = s.scalars(select(InboundMessage).order_by(InboundMessage.id)).all()
        assert len(rows) == 2
        hostile, normal = rows
        assert len(hostile.message_id or "") <= 998 and hostile.message_id_key is not None
        assert hostile.sender is None or len(hostile.sender) <= 320
        assert all(len(e.actor) <= 320 for e in s.scalars(select(Event)))
        assert all(len(p.email) <= 320 for p in s.scalars(select(Participant)))
        cases = s.scalars(select(Case)).all()
        assert normal.case_id is not None and normal.case_id in {c.id for c in cases}
    # The same hostile message again (another copy, same Message-ID) is known: not recorded twice.
    h.deliver(_hostile().replace(b"Date: Mon", b"X-Copy: 2\r\nDate: Mon"))
    assert ingest_source(h.rt).total == 1
    with h.app.db.transaction() as s:
        assert len(s.scalars(select(InboundMessage)).all()) == 2


def test_fit_knows_the_column_lengths_from_the_models() -> None:
    assert len(fit(InboundMessage.message_id, LONG_ID) or "") == 998
    assert len(fit(InboundMessage.sender, LONG_SENDER) or "") == 320
    assert len(fit(InboundMessage.reason, "r" * 10_000) or "") == 2000
    assert fit(InboundMessage.sender, "a\x00b\udc80c") == "a\ufffdb?c"
    assert fit(InboundMessage.sender, "jo@example.org") == "jo@example.org"


def test_a_record_the_database_refuses_is_quarantined_in_a_fresh_transaction(
        h_any: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    h = h_any
    real_record = ingest._record  # noqa: SLF001 - the database refusal is injected here
    calls = {"n": 0}

    def refuse_first(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("INSERT INTO inbound_messages ...", {"raw": "Ada Testperson 03/04/1951"},
                                   Exception("server closed the connection"))
        return real_record(*args, **kwargs)

    monkeypatch.setattr(ingest, "_record", refuse_first)
    h.deliver(make_form(message_id="<refused@example.org>"), make_form())
    with caplog.at_level(logging.DEBUG):
        result = ingest_source(h.rt)
    assert result.outcomes == {"quarantined": 1, "processed": 1}
    assert h.maildir_new() == []
    with h.app.db.transaction() as s:
        first = s.scalars(select(InboundMessage).order_by(InboundMessage.id)).first()
        assert first is not None and first.outcome == "quarantined" and first.raw.startswith(b"From")
        assert first.message_id == "<refused@example.org>"
        assert first.reason == "could not be recorded: OperationalError (Exception)"
        notices = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "quarantine_notice")).all()
        assert len(notices) == 1
        assert len(s.scalars(select(Case)).all()) == 1
    assert "Ada Testperson" not in caplog.text and "INSERT" not in caplog.text


def test_when_not_even_the_quarantine_record_can_be_written_the_message_stays_put(
        h_any: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    h = h_any
    real_record, real_quarantine = ingest._record, ingest._quarantine_unrecorded  # noqa: SLF001 - the database refusal is injected here
    boom = OperationalError("INSERT ...", {"raw": "Ada Testperson"}, Exception("disk full"))

    def refuse(rt, mail, *args, **kwargs):  # type: ignore[no-untyped-def]
        if mail.source_id.endswith("000.eml"):
            raise boom
        return real_record(rt, mail, *args, **kwargs)

    def refuse_too(rt, mail, source_id, message_id, sha, now, failure):  # type: ignore[no-untyped-def]
        monkeypatch.setattr(h.app.db, "transaction", _failing_transaction(boom))
        try:
            return real_quarantine(rt, mail, source_id, message_id, sha, now, failure)
        finally:
            monkeypatch.undo()
            monkeypatch.setattr(ingest, "_record", refuse)
            monkeypatch.setattr(ingest, "_quarantine_unrecorded", refuse_too)

    monkeypatch.setattr(ingest, "_record", refuse)
    monkeypatch.setattr(ingest, "_quarantine_unrecorded", refuse_too)
    h.deliver(make_form(message_id="<stuck@example.org>"), make_form())
    with caplog.at_level(logging.INFO):
        result = ingest_source(h.rt)
    assert result.outcomes == {"not recorded": 1, "processed": 1}
    assert [n.split(":")[0] for n in h.maildir_new()] == ["000.eml"]   # left in the watched folder
    with h.app.db.transaction() as s:
        assert len(s.scalars(select(Case)).all()) == 1
    left = [r.getMessage() for r in caplog.records if "left in the mailbox" in r.getMessage()]
    assert len(left) == 1 and "000.eml" in left[0]
    assert "Ada Testperson" not in caplog.text and "INSERT" not in caplog.text


def _failing_transaction(exc: Exception):  # type: ignore[no-untyped-def]
    from contextlib import contextmanager

    @contextmanager
    def transaction():  # type: ignore[no-untyped-def]
        raise exc
        yield

    return transaction
