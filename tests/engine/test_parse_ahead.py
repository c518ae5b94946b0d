"""Ingest reads one message ahead: the parser process reads the next message while the current one's
transaction runs (issue 12). The commits keep their order, each message is settled only after its
own commit, and a message read ahead but not recorded stays in the mailbox."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from mailflow.connection.errors import MailboxUnavailable
from mailflow.db.models import Case, InboundMessage
from mailflow.pipeline import ingest
from mailflow.pipeline.ingest import ingest_source, ingest_stream
from mailflow.sources.base import InboundMail
from mailflow.sources.maildir import MaildirSource
from tests.conftest import make_form
from tests.engine.conftest import Harness


def _forms(n: int) -> list[bytes]:
    return [make_form(f"raiser{i}@gwh.nhs.example.org") for i in range(n)]


def test_the_next_message_is_parsed_while_the_current_one_is_recorded(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first message's record waits until the second message's parse has begun (and that
    parse until the record has begun): without reading ahead, neither would ever start."""
    raws = _forms(2)
    parse_started, record_started = threading.Event(), threading.Event()
    parse, record = ingest.parse_in_worker, ingest._record   # noqa: SLF001 - the overlap is observed here

    def slow_parse(raw: bytes, limits: Any = None) -> Any:
        if raw == raws[1]:
            parse_started.set()
            assert record_started.wait(10), "the second parse did not overlap the first record"
        return parse(raw, limits)

    def waiting_record(rt: Any, mail: InboundMail, *args: Any) -> Any:
        if mail.raw == raws[0]:
            record_started.set()
            assert parse_started.wait(10), "the second message was not parsed ahead"
        return record(rt, mail, *args)

    monkeypatch.setattr(ingest, "parse_in_worker", slow_parse)
    monkeypatch.setattr(ingest, "_record", waiting_record)
    h.deliver(*raws)
    result = ingest_source(h.rt)
    assert result.outcomes == {"processed": 2}
    assert h.maildir_new() == []
    with h.app.db.transaction() as s:
        assert s.scalars(select(Case.reference).order_by(Case.id)).all() == ["SSP-2026-0001", "SSP-2026-0002"]


def test_each_message_is_settled_after_its_own_commit_in_order(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    raws = _forms(4)
    box = h.deliver(*raws)
    seen: list[tuple[str, int]] = []
    settle = MaildirSource.settle

    def checked_settle(self: MaildirSource, mail: InboundMail, *args: Any) -> None:
        with h.app.db.transaction() as s:   # a fresh transaction sees the committed record
            recorded = s.scalars(select(InboundMessage.id).where(InboundMessage.source_id == mail.source_id)).all()
        seen.append((mail.source_id, len(recorded)))
        settle(self, mail, *args)

    monkeypatch.setattr(MaildirSource, "settle", checked_settle)
    assert box is not None
    assert ingest_source(h.rt).outcomes == {"processed": 4}
    assert seen == [(f"maildir:{n:03d}.eml", 1) for n in range(4)]


def test_the_message_read_ahead_stays_in_the_mailbox_when_ingest_stops(h: Harness) -> None:
    h.deliver(*_forms(3))
    result = ingest_source(h.rt, limit=1)
    assert result.total == 1
    assert h.maildir_new() == ["001.eml", "002.eml"]      # the second was read (and parsed) ahead: still there
    with h.app.db.transaction() as s:
        assert len(s.scalars(select(InboundMessage)).all()) == 1
    assert ingest_source(h.rt).outcomes == {"processed": 2}
    assert h.maildir_new() == []


def test_a_mailbox_failing_midway_still_records_and_settles_the_message_in_hand(h: Harness) -> None:
    raws = _forms(2)

    def mails() -> Iterator[InboundMail]:
        yield InboundMail(raw=raws[0], source_id="test:1")
        raise MailboxUnavailable("connection lost while fetching")

    stream = ingest_stream(h.rt, mails())
    mail, done = next(stream)
    assert mail.source_id == "test:1" and done is not None and done.outcome.value == "processed"
    with pytest.raises(MailboxUnavailable):
        next(stream)


def test_outcomes_match_one_message_at_a_time(h: Harness) -> None:
    raws = _forms(3)
    raws.append(raws[0])   # the same bytes again: a duplicate, settled only
    results = [(m.source_id, d.outcome.value if d else None, d.duplicate if d else None)
               for m, d in ingest_stream(h.rt, (InboundMail(raw=r, source_id=f"test:{n}")
                                                for n, r in enumerate(raws)))]
    assert results == [("test:0", "processed", False), ("test:1", "processed", False),
                       ("test:2", "processed", False), ("test:3", "processed", True)]
