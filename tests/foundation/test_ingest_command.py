"""`mailflow ingest` and the Maildir source keep each message byte for byte as the mailbox holds it
(so its SHA-256 is the original's), and a second run over the same mail changes nothing.
Invented people only."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailflow.app import App
from mailflow.cli import ingest_cmd
from mailflow.cli.main import main
from mailflow.clock import FixedClock, parse_instant
from mailflow.db.models import Case, Event, InboundMessage, OutboxMessage
from mailflow.pipeline.ingest import ingest_source
from mailflow.sources.maildir import MaildirSource
from tests.conftest import make_config, make_form, write_config

# Headers the stdlib re-folds when it re-generates a message: a long Subject, a folded References
# list, a header with odd spacing. msg.as_bytes() changed every one of them.
ODD_HEADERS = (b"Subject: Escalation form for the professionals meeting about the discharge arrangements "
               b"and the section 42 enquiry\n"
               b"References: <a.1@gwh.nhs.example.org>\n\t<b.2@gwh.nhs.example.org>\n"
               b"X-Odd:    spaced   out\n")


def _with_odd_headers(raw: bytes) -> bytes:
    raw = raw.replace(b"\r\n", b"\n")
    head, _, body = raw.partition(b"\n\n")
    head = b"\n".join(line for line in head.split(b"\n") if not line.startswith(b"Subject:"))
    return head + b"\n" + ODD_HEADERS + b"\n" + body


def _mbox(messages: list[bytes]) -> bytes:
    return b"".join(b"From someone@example.org Mon Dec 21 10:00:00 2026\n" + m.rstrip(b"\n") + b"\n\n"
                    for m in messages)


def _stored(config: Path) -> list[InboundMessage]:
    app = App.open(make_config(config.parent, _db_url(config)), FixedClock(parse_instant("2026-12-21T11:00")))
    try:
        with app.db.transaction() as s:
            rows = list(s.scalars(select(InboundMessage).order_by(InboundMessage.id)))
            s.expunge_all()
            return rows
    finally:
        app.close()


def _counts(config: Path) -> tuple[int, int, int, int]:
    app = App.open(make_config(config.parent, _db_url(config)), FixedClock(parse_instant("2026-12-21T11:00")))
    try:
        with app.db.transaction() as s:
            return tuple(s.scalar(select(func.count()).select_from(t)) or 0   # type: ignore[return-value]
                         for t in (InboundMessage, Case, OutboxMessage, Event))
    finally:
        app.close()


def _db_url(config: Path) -> str:
    return f"sqlite:///{config.parent / 'ingest.db'}"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, f"sqlite:///{tmp_path / 'ingest.db'}")


def test_mbox_messages_are_stored_as_the_mailbox_holds_them_and_a_second_run_changes_nothing(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = _with_odd_headers(make_form(message_id="<one@gwh.nhs.example.org>"))
    two = _with_odd_headers(make_form("sam.imaginary@awp.nhs.example.org", message_id="<two@awp.example.org>"))
    mbox = config.parent / "backlog.mbox"
    mbox.write_bytes(_mbox([one, two]))

    assert main(["--config", str(config), "ingest", str(mbox), "--at", "2026-12-21T11:00"]) == 0
    assert capsys.readouterr().out.splitlines() == ["ingested: 2 processed"]   # not a terminal: one line
    stored = _stored(config)
    assert [r.raw for r in stored] == [one.rstrip(b"\n") + b"\n", two.rstrip(b"\n") + b"\n"]
    assert all(r.sha256 == hashlib.sha256(r.raw).hexdigest() for r in stored)
    before = _counts(config)
    assert before[:2] == (2, 2)

    assert main(["--config", str(config), "ingest", str(mbox), "--at", "2026-12-21T11:30"]) == 0
    assert capsys.readouterr().out.splitlines() == ["ingested: 2 processed (2 already recorded: unchanged)"]
    assert _counts(config) == before


@pytest.mark.parametrize(("minutes_apart", "held"), [(60, 0), (1, 4)])
def test_an_imported_mailbox_is_held_by_the_hourly_limit_only_where_it_arrived_as_a_flood(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], minutes_apart: int, held: int) -> None:
    """Six forms from one sender, read in one go: an hour apart in the mailbox ("From " lines), a
    busy colleague, all processed; a minute apart, a flood past the limit of two an hour."""
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'ingest.db'}",
                          extra="[daemon]\nsender_messages_per_hour = 2")
    start = parse_instant("2026-12-18T08:00")
    mbox = tmp_path / "old.mbox"
    mbox.write_bytes(b"".join(
        (start + timedelta(minutes=minutes_apart * i)).strftime("From jo@example.org %a %b %d %H:%M:%S %Y\n").encode()
        + make_form(message_id=f"<old{i}@gwh.nhs.example.org>").rstrip(b"\n") + b"\n\n" for i in range(6)))
    assert main(["--config", str(config), "ingest", str(mbox), "--at", "2026-12-21T11:00"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "ingested: " + (f"{6 - held} processed, {held} quarantined" if held
                                                   else "6 processed")
    stored = _stored(config)
    assert [r.arrived_at for r in stored] == [start + timedelta(minutes=minutes_apart * i) for i in range(6)]
    assert {r.received_at for r in stored} == {parse_instant("2026-12-21T11:00")}


def test_loose_eml_files_arrived_when_their_server_stamped_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A folder of .eml files saved from a mail client: each arrived when the topmost Received line
    says (an hour apart: not a flood); a file with none counts as arriving now."""
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'ingest.db'}",
                          extra="[daemon]\nsender_messages_per_hour = 2")
    folder = tmp_path / "saved"
    folder.mkdir()
    start = parse_instant("2026-12-18T08:00")
    for i in range(4):
        stamp = (start + timedelta(hours=i)).strftime("%a, %d %b %Y %H:%M:%S +0000")
        (folder / f"{i}.eml").write_bytes(f"Received: by mx.ssp.example.org; {stamp}\n".encode()
                                          + make_form(message_id=f"<saved{i}@gwh.nhs.example.org>"))
    (folder / "9.eml").write_bytes(make_form(message_id="<unstamped@gwh.nhs.example.org>"))
    assert main(["--config", str(config), "ingest", str(folder), "--at", "2026-12-21T11:00"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "ingested: 5 processed"
    assert [r.arrived_at for r in _stored(config)] == [
        *(start + timedelta(hours=i) for i in range(4)), parse_instant("2026-12-21T11:00")]


def test_a_maildir_message_arrived_when_it_was_delivered(tmp_path: Path) -> None:
    app = App.open(make_config(tmp_path, f"sqlite:///{tmp_path / 'md.db'}"),
                   FixedClock(parse_instant("2026-12-21T11:00")))
    try:
        delivered = MaildirSource(tmp_path / "mail").deliver(make_form(message_id="<dl@gwh.nhs.example.org>"), "a")
        at = parse_instant("2026-12-19T07:30")
        os.utime(delivered, (at.timestamp(), at.timestamp()))
        future = MaildirSource(tmp_path / "mail").deliver(make_form(message_id="<fu@gwh.nhs.example.org>"), "b")
        ahead = parse_instant("2026-12-22T09:00")   # a clock ahead of ours: never later than now
        os.utime(future, (ahead.timestamp(), ahead.timestamp()))
        assert ingest_source(app.runtime()).outcomes == {"processed": 2}
        with app.db.transaction() as s:
            arrived = s.scalars(select(InboundMessage.arrived_at).order_by(InboundMessage.id)).all()
        assert arrived == [at, parse_instant("2026-12-21T11:00")]
    finally:
        app.close()


def test_the_mbox_check_reads_five_bytes_not_the_file(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mbox = config.parent / "backlog.mbox"
    mbox.write_bytes(_mbox([make_form(message_id="<one@gwh.nhs.example.org>")]))
    read_whole = []
    monkeypatch.setattr(Path, "read_bytes", lambda self: read_whole.append(self) or b"")
    found = ingest_cmd.mail_at(mbox)
    assert found.count == 1 and read_whole == []


def test_a_maildir_message_is_stored_byte_for_byte(tmp_path: Path) -> None:
    app = App.open(make_config(tmp_path, f"sqlite:///{tmp_path / 'md.db'}"),
                   FixedClock(parse_instant("2026-12-21T11:00")))
    try:
        raw = _with_odd_headers(make_form(message_id="<md@gwh.nhs.example.org>")).replace(b"\n", b"\r\n")
        MaildirSource(tmp_path / "mail").deliver(raw, "form.eml")
        assert ingest_source(app.runtime()).outcomes == {"processed": 1}
        with app.db.transaction() as s:
            stored = s.scalars(select(InboundMessage)).one()
            assert stored.raw == raw and stored.sha256 == hashlib.sha256(raw).hexdigest()
    finally:
        app.close()


def test_a_terminal_gets_a_progress_bar_with_count_rate_and_time_left(
        config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = config.parent / "forms"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.eml").write_bytes(make_form(message_id=f"<f{i}@gwh.nhs.example.org>"))
    screen = io.StringIO()
    screen.isatty = lambda: True   # type: ignore[method-assign]
    monkeypatch.setattr("sys.stdout", screen)
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("TERM", "xterm")
    assert main(["--config", str(config), "ingest", str(folder), "--at", "2026-12-21T11:00"]) == 0
    shown = screen.getvalue()
    assert "3/3" in shown and "msg/s" in shown and "left" in shown
    assert shown.rstrip().endswith("ingested: 3 processed")
