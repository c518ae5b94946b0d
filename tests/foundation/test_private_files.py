"""What mailflow writes to disk is owner-only whatever the umask (issue 11 item 7): the SQLite
database (and its WAL), the var folder, the reply-token key, the Maildir it creates and the
outbox .eml files are 0600 files in 0700 folders."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from mailflow.app import App
from mailflow.clock import SystemClock
from mailflow.config import load_config
from mailflow.sources.base import Outcome
from mailflow.sources.maildir import MaildirSource
from mailflow.transports.base import OutgoingMail
from mailflow.transports.file import FileTransport
from tests.conftest import make_form, write_config


@pytest.fixture(params=[0o022, 0o000])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_var_dir_key_maildir_and_outbox_are_owner_only(tmp_path: Path, umask: int) -> None:
    root = tmp_path / "install"  # nothing exists yet: mailflow creates every folder below
    root.mkdir()
    path = write_config(root, f"sqlite:///{root / 'data' / 'db' / 'mailflow.db'}")
    app = App.open(load_config(str(path)), SystemClock())
    try:
        rt = app.runtime()
        _ = rt.source, rt.transport
        with app.db.transaction() as s:  # a write, so the WAL file exists while the app is open
            s.execute(text("CREATE TABLE scratch (x INTEGER)"))
        db_file = root / "data" / "db" / "mailflow.db"
        assert _mode(db_file) == 0o600
        wal = db_file.with_name("mailflow.db-wal")
        assert wal.exists() and _mode(wal) == 0o600
        for d in (root / "data", root / "data" / "db", root / "var", root / "mail", root / "mail" / "new",
                  root / "mail" / "cur", root / "mail" / "tmp", root / "outbox"):
            assert _mode(d) == 0o700, d
        assert _mode(root / "var" / "secret.key") == 0o600
    finally:
        app.close()


def test_outbox_files_and_delivered_mail_are_owner_only(tmp_path: Path, umask: int) -> None:
    transport = FileTransport(tmp_path / "out" / "box")
    transport.send(OutgoingMail("<SSP-2026-0001.abc@mailflow.test>", "a@example.org", ("b@example.org",),
                                b"Subject: x\r\n\r\nbody\r\n"))
    (eml,) = (tmp_path / "out" / "box").iterdir()
    assert eml.suffix == ".eml" and _mode(eml) == 0o600
    assert _mode(tmp_path / "out") == 0o700 and _mode(tmp_path / "out" / "box") == 0o700
    assert eml.read_bytes().endswith(b"body\r\n")

    maildir = MaildirSource(tmp_path / "mail")
    delivered = maildir.deliver(make_form(), "1.form")
    assert _mode(delivered) == 0o600
    (mail,) = list(maildir.fetch())
    maildir.settle(mail, Outcome.QUARANTINED)
    for d in (tmp_path / "mail" / ".Quarantine", tmp_path / "mail" / ".Quarantine" / "cur"):
        assert _mode(d) == 0o700, d
