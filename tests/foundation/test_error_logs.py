"""Error logs name the step and the kind of failure, never message text or SQL parameters
(issue 11 item 8)."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from mailflow.daemon import PassReport, _step
from mailflow.db.database import Database
from mailflow.errors import MailflowError

PERSONAL = "Ada Testperson, 1 Example Road"


def _fail_with(exc: BaseException):  # type: ignore[no-untyped-def]
    def fn() -> None:
        raise exc
    return fn


@pytest.mark.parametrize(("exc", "logged"), [
    (ValueError(f"cannot parse {PERSONAL}"), "SSP: ingest step failed: ValueError"),
    (KeyError(PERSONAL), "SSP: ingest step failed: KeyError"),
    (MailflowError("imap:sab@example.org: the server refused the login"),
     "SSP: ingest step failed: MailflowError: imap:sab@example.org: the server refused the login"),
])
def test_a_failed_step_logs_no_message_text(caplog: pytest.LogCaptureFixture, exc: BaseException,
                                            logged: str) -> None:
    report = PassReport()
    with caplog.at_level(logging.DEBUG):
        _step(report, SimpleNamespace(prefix="SSP"), "ingest", _fail_with(exc))  # type: ignore[arg-type]
    assert [r.getMessage() for r in caplog.records] == [logged]
    assert PERSONAL not in " ".join(report.errors)


def test_database_errors_carry_no_parameters(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with db.transaction() as s:
            s.execute(text("CREATE TABLE t (body TEXT UNIQUE)"))
        with pytest.raises(IntegrityError) as err, db.transaction() as s:
            s.execute(text("INSERT INTO t (body) VALUES (:b)"), [{"b": PERSONAL}, {"b": PERSONAL}])
        assert PERSONAL not in str(err.value)
    finally:
        db.dispose()
