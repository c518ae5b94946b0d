"""Engine, sessions and schema upgrades (Alembic) for SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from mailflow.db.bounds import bound_session
from mailflow.errors import ConfigError, MailflowError
from mailflow.logging_setup import error_summary
from mailflow.pipeline.audit import seal_on_commit
from mailflow.private_files import create_private_file

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# One lock per schema: several `mailflow run` starting together migrate one at a time.
_LOCK_KEY_SQL = "hashtext('mailflow-migrations:' || current_schema())"
log = logging.getLogger(__name__)


class SchemaNotCurrent(ConfigError):
    """The database's schema is not the one this mailflow needs (exit 2: the operator upgrades)."""

    def __init__(self, current: str | None, head: str, known: bool = True) -> None:
        self.current, self.head = current, head
        if not known:
            message = (f"the database is at revision {current}, which this mailflow does not know (it "
                       f"needs {head}): a newer mailflow has upgraded it; install that version")
        elif current is None:
            message = (f"the database has no schema yet (no revision), this mailflow needs {head}: "
                       f"run `mailflow db upgrade`")
        else:
            message = (f"the database is at revision {current}, this mailflow needs {head}: "
                       f"run `mailflow db upgrade`")
        super().__init__(message)


class Database:
    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = _engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        bound_session(self._sessions)
        seal_on_commit(self._sessions)   # audit events are hash-chained as they commit

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

    def upgrade(self) -> str | None:
        """Bring the schema to the newest migration (`mailflow run` and `mailflow db upgrade` only);
        returns the revision it found (None: an empty database).

        On PostgreSQL under an advisory lock: of several workers starting at once one migrates,
        the others wait for it and then find the schema at head."""
        from alembic import command

        try:
            with self._migration_lock():
                found, head = self.revisions()
                if found is not None and found not in _known_revisions():
                    raise SchemaNotCurrent(found, head, known=False)
                if found != head:
                    command.upgrade(alembic_config(self), "head")
                return found
        except MailflowError:
            raise
        except Exception as exc:  # reported in one line
            raise MailflowError(f"database upgrade failed on {self.shown_url}: {error_summary(exc)}") from exc

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """A PostgreSQL session-level advisory lock held on its own connection while migrating
        (keyed by the schema, so installations in other schemas of one database do not wait)."""
        if not self.is_postgres:
            yield   # SQLite: BEGIN IMMEDIATE in the migration's transaction serialises writers
            return
        with self.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            if not conn.scalar(text(f"SELECT pg_try_advisory_lock({_LOCK_KEY_SQL})")):
                log.info("another mailflow is upgrading the database: waiting for it")
                conn.execute(text(f"SELECT pg_advisory_lock({_LOCK_KEY_SQL})"))
            try:
                yield
            finally:
                conn.execute(text(f"SELECT pg_advisory_unlock({_LOCK_KEY_SQL})"))

    def revisions(self) -> tuple[str | None, str]:
        """(the database's schema revision, None when it has none; the newest this mailflow ships)."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        return current, ScriptDirectory(str(MIGRATIONS)).get_current_head() or ""

    def is_empty(self) -> bool:
        """No tables at all: a database nothing has written to yet."""
        return not inspect(self.engine).get_table_names()

    def require_head(self, create_empty_sqlite: bool = True) -> None:
        """Refuse a database whose schema is not this mailflow's newest (every command but `run`
        and `db upgrade`, which migrate). An empty SQLite file (the embedded default's first use)
        is created at head: there is nothing to migrate and no other worker to race."""
        if self._at_shipped_head():
            return
        current, head = self.revisions()
        if current == head:
            return
        if current is None and create_empty_sqlite and not self.is_postgres and self.is_empty():
            self.upgrade()
            return
        raise SchemaNotCurrent(current, head, known=current is None or current in _known_revisions())

    def _at_shipped_head(self) -> bool:
        """The common case, cheaply: the database's one revision is the newest migration file's,
        read with one query and without loading Alembic or its scripts (every command but `run`
        and `db upgrade` asks this at start-up). Anything else (no version table, another
        revision, a layout of the scripts this does not read) is Alembic's to judge."""
        head = shipped_head()
        if head is None:
            return False
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return False
            found = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        return found == [head]

    @property
    def shown_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

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
    # synchronous stays FULL (the default), though NORMAL makes a commit ~20x cheaper here (1.5 ms
    # -> 0.07 ms): a source settles a message (moves it out of the watched folder) and the sender
    # marks a mail sent once their transaction has committed, and under NORMAL a power cut can undo
    # such a commit: a message lost or a notice sent twice.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin_immediate(conn: Any) -> None:
    # Writers queue on the lock at BEGIN rather than failing at their first write.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


_REVISION_LINE = re.compile(r"^(down_revision|revision)\s*(?::[^=]+)?=\s*(.*?)\s*$", re.MULTILINE)
_QUOTED = re.compile(r"""^(?:"([^"]+)"|'([^']+)')$""")


@cache
def shipped_head() -> str | None:
    """The newest revision among the migration files, read as text (no import): the one no other
    file names as its down_revision. None when a file is not of the plain one-parent form this
    reads (a merge, a computed id) or there is not exactly one head: then ask Alembic."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = {m.group(1): m.group(2) for m in _REVISION_LINE.finditer(path.read_text(encoding="utf-8"))}
        if set(found) != {"revision", "down_revision"}:
            return None
        for key, value in found.items():
            quoted = _QUOTED.match(value)
            if quoted is None and not (key == "down_revision" and value == "None"):
                return None
            if quoted is not None:
                (revisions if key == "revision" else parents).add(quoted.group(1) or quoted.group(2))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {rev.revision for rev in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}


def alembic_config(db: Database) -> Any:
    from alembic.config import Config as AlembicConfig

    # Alembic's default stdout is sys.stdout as it was when alembic was first imported, which may
    # be a stream closed since (a pipe the reader closed, a test's capture): take today's.
    cfg = AlembicConfig(stdout=sys.stdout)
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = db.engine
    return cfg
