"""Engine, sessions and schema upgrades (Alembic) for SQLite and PostgreSQL."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from mailflow.db.bounds import bound_session
from mailflow.errors import MailflowError
from mailflow.private_files import create_private_file

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class Database:
    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = _engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        bound_session(self._sessions)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed on success, rolled back on any exception."""
        with self._sessions() as session, session.begin():
            yield session

    def session(self) -> Session:
        return self._sessions()

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (the daemon does this on start)."""
        from alembic import command

        try:
            command.upgrade(alembic_config(self), "head")
        except Exception as exc:  # noqa: BLE001 - reported in one line
            raise MailflowError(f"database upgrade failed on {self.engine.url!r}: {exc}") from exc

    def dispose(self) -> None:
        self.engine.dispose()


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here; a SQLite file is created owner-only (0600, in 0700 folders)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
        # SQLite gives its -wal and -shm files the database file's mode, so they are private too.
        create_private_file(Path(parsed.database))
    return parsed.render_as_string(hide_password=False)


def _engine(url: str) -> Engine:
    # hide_parameters: an error or log line never quotes the values (message text, addresses).
    kwargs: dict[str, Any] = {"future": True, "hide_parameters": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy issue BEGIN itself (pysqlite's own transaction handling is off).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin_immediate(conn: Any) -> None:
    # Writers queue on the lock at BEGIN rather than failing at their first write.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config(db: Database) -> Any:
    from alembic.config import Config as AlembicConfig

    # Alembic's default stdout is sys.stdout as it was when alembic was first imported, which may
    # be a stream closed since (a pipe the reader closed, a test's capture): take today's.
    cfg = AlembicConfig(stdout=sys.stdout)
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = db.engine
    return cfg
