"""SIGTERM stops `mailflow run` gracefully mid-work: a real IMAP mailbox (pymap) holding many forms
and a real SMTP server (aiosmtpd); the signal arrives while messages are being applied and sent.
The process exits 0 having finished the message in hand (every message it recorded has left the
inbox, every one it did not is still there, nothing is left half-sent); a restart then records
the rest. At the end every form is one case, recorded once, acknowledged once."""

from __future__ import annotations

import email
import re
from collections import Counter
from email.policy import default
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from mailflow.db.models import Case, InboundMessage, OutboxMessage
from mailflow.demo_servers import start_imap_server, start_smtp_server
from tests.conftest import make_form

from .daemon_process import IMAP_PASSWORD, IMAP_USER, DaemonProcess, imap_smtp_config, poll

FORMS = 60
AT = "2026-12-21T10:00:00"


def _message_id(raw: bytes) -> str:
    return str(email.message_from_bytes(raw, policy=default)["Message-ID"]).strip()


def _rows(db_url: str) -> tuple[list[InboundMessage], list[Case], list[OutboxMessage]]:
    engine = create_engine(db_url)
    try:
        with Session(engine) as s:
            return (list(s.scalars(select(InboundMessage))), list(s.scalars(select(Case))),
                    list(s.scalars(select(OutboxMessage))))
    finally:
        engine.dispose()


def test_sigterm_mid_work_loses_nothing_and_exits_0(tmp_path: Path, db_url: str) -> None:
    imap = start_imap_server(IMAP_USER, IMAP_PASSWORD)
    smtp = start_smtp_server()
    forms = [make_form(f"nurse{i}.example@gwh.nhs.example.org") for i in range(FORMS)]
    imap.append_many(forms)
    delivered = {_message_id(raw) for raw in forms}
    config = imap_smtp_config(tmp_path, db_url, imap.port, smtp.port)
    first = DaemonProcess(config, "--at", AT)
    try:
        first.wait_for_line(r"inbound #3 ", timeout=120)   # work under way: messages being applied
        assert first.terminate() == 0, first.stderr[-3000:]
        assert "mailflow daemon stopped" in first.stderr

        inbound, cases, outbox = _rows(db_url)
        recorded = len(inbound)
        print(f"recorded before SIGTERM took effect: {recorded} of {FORMS}")
        assert 3 <= recorded < FORMS, "the signal should have stopped a batch under way"
        # The message in hand was finished: what was recorded has left the inbox, the rest is there.
        settled = len(imap.messages("Processed")) + len(imap.messages("Quarantine"))
        assert settled == recorded
        assert len(imap.uids("INBOX")) == FORMS - recorded
        assert [r.state for r in outbox if r.state == "sending"] == []   # no send left half done
        assert len(cases) == recorded

        second = DaemonProcess(config, "--at", AT)
        try:
            poll(lambda: _all_sent(db_url), 180, "every form recorded and acknowledged")
            assert second.terminate() == 0, second.stderr[-3000:]
            assert imap.uids("INBOX") == []
        finally:
            second.kill()
    finally:
        first.kill()
        imap.stop()
        smtp.stop()

    inbound, cases, outbox = _rows(db_url)
    assert Counter(r.message_id for r in inbound) == Counter(delivered)        # each once, none lost
    assert len(cases) == FORMS and len({c.reference for c in cases}) == FORMS
    acks = [r for r in outbox if r.kind == "acknowledgement"]
    assert Counter(r.case_id for r in acks) == Counter({c.id: 1 for c in cases})
    received = Counter(_message_id(m.raw) for m in smtp.messages)
    assert max(received.values()) == 1, "a message reached the SMTP server twice"
    assert {r.message_id for r in outbox} <= set(received)
    refs = {re.search(r"\[(SSP-\d{4}-\d{4})\]", str(email.message_from_bytes(m.raw, policy=default)["Subject"]))
            for m in smtp.messages}
    assert len({r.group(1) for r in refs if r}) == FORMS


def _all_sent(db_url: str) -> bool:
    inbound, cases, outbox = _rows(db_url)
    return len(inbound) == FORMS and len(cases) == FORMS and bool(outbox) and all(r.state == "sent" for r in outbox)
