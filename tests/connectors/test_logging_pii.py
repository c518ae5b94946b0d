"""No personal data in logs at any verbosity: a real IMAP pass over a form naming an (invented)
adult, at -vv with every logger at DEBUG, leaves the name, date of birth and address in no log
record and nowhere on stderr (issue 11 item 8)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from mailflow.cli.main import main
from mailflow.demo_servers import LoopbackImapServer
from mailflow.logging_setup import CONTENT_LOGGERS
from tests.conftest import make_form, write_config

from .conftest import PASSWORD, USER

PERSONAL = ("Ada Testperson", "Testperson", "03/04/1951", "1 Example Road", "SN1 0XX")


def _imap_config(tmp_path: Path, port: int, log_format: str = "text") -> Path:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'mailflow.db'}", extra=f'[logging]\nformat = "{log_format}"')
    (tmp_path / "pw").write_text(PASSWORD)
    imap = (f'kind = "imap"\nhost = "127.0.0.1"\nport = {port}\ntls = "none"\n'
            f'username = "{USER}"\npassword_file = "{tmp_path / "pw"}"\ntimeout = 5\nidle = false')
    text = path.read_text()
    start = text.index('kind = "maildir"')
    end = text.index("[partnership.transport]")
    path.write_text(text[:start] + imap + "\n" + text[end:])
    return path


def _form() -> bytes:
    raw = make_form()
    assert all(p.encode() in raw for p in PERSONAL)  # the message does carry them
    return raw


def test_no_personal_data_in_any_log_record_at_debug(pymap_server: LoopbackImapServer, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture,
                                                     capfd: pytest.CaptureFixture[str]) -> None:
    pymap_server.append(_form())
    config = _imap_config(tmp_path, pymap_server.port)
    caplog.set_level(logging.DEBUG)  # the root logger at DEBUG, as a debugging operator would
    assert main(["-vv", "--config", str(config), "run", "--once", "--at", "2026-12-21T10:00"]) == 0
    assert list((tmp_path / "outbox").glob("*.eml")), "the form was fetched and acknowledged"
    assert any(r.name.startswith("mailflow") for r in caplog.records)  # logging was on
    leaked = [(r.name, r.getMessage()[:120]) for r in caplog.records
              if any(p in r.getMessage() for p in PERSONAL)]
    assert leaked == []
    assert not [r for r in caplog.records
                if r.levelno < logging.WARNING and r.name.split(".")[0] in CONTENT_LOGGERS]
    err = capfd.readouterr().err
    assert not [p for p in PERSONAL if p in err]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_personal_data_on_stderr_of_the_command(pymap_server: LoopbackImapServer, tmp_path: Path,
                                                   log_format: str) -> None:
    pymap_server.append(_form())
    config = _imap_config(tmp_path, pymap_server.port, log_format)
    result = subprocess.run([sys.executable, "-m", "mailflow", "-vv", "--config", str(config), "run",
                             "--once", "--at", "2026-12-21T10:00"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert [p for p in PERSONAL if p in result.stderr + result.stdout] == []
    if log_format == "text":
        assert "DEBUG mailflow" in result.stderr  # -vv did turn debug logging on
        return
    records = [json.loads(line) for line in result.stderr.splitlines()]   # every line one JSON object
    assert any(r["level"] == "DEBUG" and r["logger"].startswith("mailflow") for r in records)
    assert set().union(*records) <= {"time", "level", "logger", "message", "case", "inbound", "exc_info"}
    opened = [r for r in records if r["message"].startswith("inbound #") and " opened " in r["message"]]
    assert opened and opened[0]["case"] == "SSP-2026-0001" and opened[0]["inbound"] == 1
