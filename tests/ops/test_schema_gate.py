"""Only `mailflow run` and `mailflow db upgrade` migrate; every other command refuses a database
whose schema is behind in one line naming the command to run (exit 2). On PostgreSQL the upgrade
holds an advisory lock, so workers starting together migrate once and the others wait."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from mailflow.cli.main import main
from mailflow.db.database import MIGRATIONS, Database, alembic_config
from tests.conftest import write_config

HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()
ROOT = Path(__file__).resolve().parents[2]


def _revision(url: str) -> str | None:
    db = Database(url)
    try:
        return db.revisions()[0]
    finally:
        db.dispose()


def _at_first_revision(url: str) -> None:
    db = Database(url)
    try:
        command.upgrade(alembic_config(db), "0001")
    finally:
        db.dispose()


def test_a_behind_database_is_refused_by_every_command_but_run_and_db_upgrade(
        tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _at_first_revision(db_url)
    config = write_config(tmp_path, db_url)
    for argv in (["cases", "list"], ["outbox", "list"], ["sweep", "--at", "2026-12-21T10:00"],
                 ["digest", "--at", "2026-12-21T08:00", "--preview", str(tmp_path / "p.html")]):
        assert main(["--config", str(config), *argv]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err == (f"mailflow: the database is at revision 0001, this mailflow needs {HEAD}: "
                       f"run `mailflow db upgrade`"), argv
    assert _revision(db_url) == "0001"   # nothing migrated behind the operator's back

    assert main(["--config", str(config), "db", "upgrade"]) == 0
    assert f"database upgraded from 0001 to {HEAD}" in capsys.readouterr().out
    assert _revision(db_url) == HEAD
    assert main(["--config", str(config), "cases", "list"]) == 0
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    assert f"database is up to date at {HEAD}" in capsys.readouterr().out


def test_run_migrates(tmp_path: Path, db_url: str) -> None:
    _at_first_revision(db_url)
    config = write_config(tmp_path, db_url)
    assert main(["--config", str(config), "run", "--once", "--at", "2026-12-21T10:00"]) == 0
    assert _revision(db_url) == HEAD


@pytest.mark.postgres
def test_an_empty_postgres_database_is_refused_not_created(tmp_path: Path, pg_url: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, pg_url)
    assert main(["--config", str(config), "cases", "list"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"mailflow: the database has no schema yet (no revision), this mailflow needs {HEAD}: "
        f"run `mailflow db upgrade`")
    db = Database(pg_url)
    try:
        assert inspect(db.engine).get_table_names() == []   # a wrong database URL is not filled in
    finally:
        db.dispose()


def test_a_fresh_sqlite_file_is_created_at_head(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The embedded default's first `cases list`: nothing to migrate, nobody to race; created."""
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    config = write_config(tmp_path, url)
    assert main(["--config", str(config), "cases", "list"]) == 0
    assert _revision(url) == HEAD


def test_a_database_from_a_newer_mailflow_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'mailflow.db'}"
    db = Database(url)
    db.upgrade()
    with db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
    db.dispose()
    assert main(["--config", str(write_config(tmp_path, url)), "cases", "list"]) == 2
    assert "at revision 9999_future, which this mailflow does not know" in capsys.readouterr().err


def _mailflow(config: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "mailflow", "--config", str(config), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _schema(pg_url: str) -> str:
    return pg_url.rsplit("search_path%3D", 1)[1]


def _waiting_for_advisory_lock(admin: psycopg.Connection, pid: int | None = None) -> int:
    """How many sessions wait for an advisory lock (not granted)."""
    return admin.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                         ).fetchone()[0]  # type: ignore[index]


@pytest.mark.postgres
def test_upgrade_waits_for_the_advisory_lock(tmp_path: Path, pg_url: str) -> None:
    """While another session holds the migration lock, `db upgrade` waits and changes nothing;
    once it is released the upgrade runs."""
    from tests.conftest import PG_ADMIN_URL

    schema = _schema(pg_url)
    config = write_config(tmp_path, pg_url)
    dsn = PG_ADMIN_URL.replace("+psycopg", "")
    with psycopg.connect(dsn, autocommit=True, options=f"-csearch_path={schema}") as holder, \
            psycopg.connect(dsn, autocommit=True) as admin:
        holder.execute("SELECT pg_advisory_lock(hashtext('mailflow-migrations:' || current_schema()))")
        proc = _mailflow(config, "db", "upgrade")
        try:
            deadline = time.monotonic() + 60
            while _waiting_for_advisory_lock(admin) == 0:   # polling a real process's state
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "db upgrade never asked for the lock"
                time.sleep(0.05)
            assert _revision(pg_url) is None   # it waits: no schema yet
            holder.execute("SELECT pg_advisory_unlock(hashtext('mailflow-migrations:' || current_schema()))")
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    assert f"upgraded from empty to {HEAD}" in out
    assert _revision(pg_url) == HEAD


@pytest.mark.postgres
def test_workers_starting_together_migrate_once(tmp_path: Path, pg_url: str) -> None:
    config = write_config(tmp_path, pg_url)
    procs = [_mailflow(config, "db", "upgrade") for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    said = sorted("upgraded" if "upgraded from empty" in out else "current" for out, _ in outs)
    assert said == ["current", "current", "upgraded"], outs
    assert _revision(pg_url) == HEAD


@pytest.mark.postgres
def test_daemons_starting_together_on_an_empty_database_all_start(tmp_path: Path, pg_url: str) -> None:
    """Three `mailflow run --once` at the same instant on an empty schema: without the lock they
    would race to create the same tables; with it one migrates and all three complete a pass."""
    config = write_config(tmp_path, pg_url)
    procs = [_mailflow(config, "run", "--once", "--at", "2026-12-21T10:00") for _ in range(3)]
    outs = [p.communicate(timeout=180) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, out + err
        assert "SSP: mailbox: nothing new" in out
    assert _revision(pg_url) == HEAD


def test_the_newest_migration_read_as_text_is_alembics_head() -> None:
    from mailflow.db.database import shipped_head

    assert shipped_head() == HEAD


def test_a_database_at_head_is_checked_without_loading_alembic(db_url: str) -> None:
    """The start-up check every command makes costs one query, not Alembic's import and scripts."""
    db = Database(db_url)
    try:
        db.upgrade()
    finally:
        db.dispose()
    code = ("import sys; from mailflow.db.database import Database; db = Database(sys.argv[1]); "
            "db.require_head(create_empty_sqlite=False); db.dispose(); print(sorted(m for m in sys.modules "
            "if m.split('.')[0] == 'alembic'))")
    out = subprocess.run([sys.executable, "-c", code, db_url], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stderr
