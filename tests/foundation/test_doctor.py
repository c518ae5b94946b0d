"""`mailflow doctor` checks the database (reachable, schema at the newest migration) and the
reply-token key, and exits 1 when either fails (issue 10 item 7)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory

from mailflow.cli.main import main
from mailflow.db.database import MIGRATIONS, Database, alembic_config
from mailflow.demo_servers import free_port
from mailflow.diagnostics import check_database
from tests.conftest import write_config

HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()


def _doctor(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["--config", str(config), "doctor"])
    return code, capsys.readouterr().out


def _line(out: str, prefix: str) -> str:
    (line,) = [x for x in out.splitlines() if x.startswith(prefix)]
    return line


def test_database_behind_head_fails_then_passes_after_upgrade(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'mailflow.db'}"
    db = Database(url)
    command.upgrade(alembic_config(db), "0001")
    db.dispose()
    config = write_config(tmp_path, url)

    code, out = _doctor(config, capsys)
    assert code == 1
    assert _line(out, "database: FAIL: ").endswith(
        f"schema at 0001, behind the newest migration {HEAD}: run 'mailflow db upgrade'")
    assert "Test Partnership: mailbox: OK" in out  # the other checks still ran

    assert main(["--config", str(config), "db", "upgrade"]) == 0
    code, out = _doctor(config, capsys)
    assert code == 0, out
    assert f"reachable; schema at the newest migration ({HEAD})" in _line(out, "database: OK: ")


def test_missing_or_empty_sqlite_database(tmp_path: Path) -> None:
    ok, lines = check_database(f"sqlite:///{tmp_path / 'none.db'}")
    assert not ok and "does not exist: run 'mailflow db upgrade'" in lines[0]
    assert not (tmp_path / "none.db").exists()  # the doctor changes nothing
    (tmp_path / "empty.db").write_bytes(b"")
    ok, lines = check_database(f"sqlite:///{tmp_path / 'empty.db'}")
    assert not ok and "reachable but empty (no schema)" in lines[0]


def test_unreachable_database(tmp_path: Path) -> None:
    ok, lines = check_database(f"postgresql://mailflow:pw-not-shown@127.0.0.1:{free_port()}/mailflow")
    assert not ok and "cannot connect" in lines[0] and "pw-not-shown" not in lines[0]


@pytest.mark.postgres
def test_postgres_at_head(pg_url: str) -> None:
    db = Database(pg_url)
    db.upgrade()
    db.dispose()
    ok, lines = check_database(pg_url)
    assert ok and f"({HEAD})" in lines[0]


def test_database_from_a_newer_mailflow(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mailflow.db'}"
    db = Database(url)
    db.upgrade()
    with db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
    db.dispose()
    ok, lines = check_database(url)
    assert not ok and "9999_future, which this mailflow does not know" in lines[0]


@pytest.mark.parametrize(("value", "says"), [
    (None, "environment variable MAILFLOW_TEST_DOCTOR_KEY is not set"),
    ("", "is empty"),
    ("too-short", "is 9 characters"),
])
def test_bad_secret_fails_the_doctor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str], value: str | None, says: str) -> None:
    url = f"sqlite:///{tmp_path / 'mailflow.db'}"
    Database(url).upgrade()
    config = write_config(tmp_path, url, extra='secret_env = "MAILFLOW_TEST_DOCTOR_KEY"')
    if value is None:
        monkeypatch.delenv("MAILFLOW_TEST_DOCTOR_KEY", raising=False)
    else:
        monkeypatch.setenv("MAILFLOW_TEST_DOCTOR_KEY", value)
    code, out = _doctor(config, capsys)
    assert code == 1
    assert says in _line(out, "secret: FAIL: ")
    assert "database: OK" in out

    monkeypatch.setenv("MAILFLOW_TEST_DOCTOR_KEY", "x" * 40)
    code, out = _doctor(config, capsys)
    assert code == 0 and "from $MAILFLOW_TEST_DOCTOR_KEY, 40 characters" in _line(out, "secret: OK: ")
    assert "x" * 40 not in out  # the key itself is never shown


def test_group_readable_key_file_is_noted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'mailflow.db'}"
    Database(url).upgrade()
    key = tmp_path / "token.key"
    key.write_text("y" * 64)
    key.chmod(0o644)
    code, out = _doctor(write_config(tmp_path, url, extra=f'secret_file = "{key}"'), capsys)
    assert code == 0 and f"note: {key} can be read by other users: chmod 600" in out
