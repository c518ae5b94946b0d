"""A message read over IMAP is stored byte for byte as the server holds it (its SHA-256 is the
original's), odd headers and all. Invented people only."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import select

from mailflow.app import App
from mailflow.clock import FixedClock, parse_instant
from mailflow.db.models import InboundMessage
from mailflow.pipeline.ingest import ingest_one
from tests.conftest import make_config, make_form

from .conftest import imap_source


def test_a_message_fetched_over_imap_is_stored_byte_for_byte(imap_server, tmp_path: Path) -> None:
    form = make_form(message_id="<imap.raw@gwh.nhs.example.org>").replace(b"\r\n", b"\n")
    head, _, body = form.partition(b"\n\n")
    # Headers the stdlib would re-fold if it re-generated the message.
    head += (b"\nReferences: <a.1@gwh.nhs.example.org>\n\t<b.2@gwh.nhs.example.org>\n"
             b"X-Odd:    spaced   out\nThread-Topic: the discharge arrangements and the section 42 enquiry "
             b"for the professionals meeting next week")
    raw = (head + b"\n\n" + body).replace(b"\n", b"\r\n")
    imap_server.append(raw)
    source = imap_source(imap_server)
    app = App.open(make_config(tmp_path, f"sqlite:///{tmp_path / 'imap.db'}"),
                   FixedClock(parse_instant("2026-12-21T11:00")))
    try:
        [mail] = list(source.fetch())
        ingest_one(app.runtime(), mail)
        with app.db.transaction() as s:
            stored = s.scalars(select(InboundMessage)).one()
            assert stored.raw == raw
            assert stored.sha256 == hashlib.sha256(raw).hexdigest()
    finally:
        app.close()
        source.close()
