"""Large bench databases on PostgreSQL, seeded in bulk from one real case.

One case is opened through the real pipeline (the tests' Swindon form ingested: its fields, participants,
deadline rows and acknowledgement are what the application writes). `grow()` then clones it with
`INSERT ... SELECT ... FROM generate_series` on the server: each clone gets its own reference,
its participants, its pending deadline rows shifted in time, and the template's first outbox
row (the thread root every notice looks up; the clone keeps the first 512 bytes of its raw, and
not the template's other notices, to keep the seed small).
Nothing is sent.

The database (default `mailflow_bench`) is created by `BenchDatabase.create()` and dropped by
`drop()`; it lives on the server named by MAILFLOW_BENCH_PG_ADMIN (default the test server).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import textwrap
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psycopg
from sqlalchemy import select, text

from mailflow.app import App
from mailflow.clock import FixedClock, parse_instant
from mailflow.config import Config, parse_config
from mailflow.db.models import Case, Deadline
from mailflow.pipeline.ingest import ingest_one
from mailflow.resources import bundled_dir
from mailflow.sources.base import InboundMail, Outcome
from tests.conftest import make_form

ADMIN_URL = os.environ.get("MAILFLOW_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
START = parse_instant("2026-12-21T10:00:00")   # Mon 21 Dec 2026, 10:00 UK


def _url(database: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{database}"


def config(workdir: Path, database_url: str) -> Config:
    """A partnership on the bundled example directory (invented people), mail to files."""
    directory = bundled_dir("examples") / "directory.example.toml"
    path = workdir / "mailflow.toml"
    path.write_text(textwrap.dedent(f"""\
        [mailflow]
        database_url = "{database_url}"
        var_dir = "{workdir / 'var'}"
        message_id_domain = "mailflow.bench"
        [[partnership]]
        name = "Bench Partnership"
        prefix = "SSP"
        policy = "swindon"
        address = "safeguarding@ssp.example.org"
        business_team = ["business.team@ssp.example.org"]
        directory = "{directory}"
        [partnership.mailbox]
        kind = "maildir"
        path = "{workdir / 'mail'}"
        [partnership.transport]
        kind = "file"
        path = "{workdir / 'outbox'}"
        """))
    return parse_config(tomllib.loads(path.read_text()), path)


@dataclass
class BenchDatabase:
    name: str = "mailflow_bench"
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mailflow-bench-")))
    cases: int = 0
    template_id: int = 0

    @property
    def url(self) -> str:
        return _url(self.name)

    def create(self) -> App:
        """A fresh database at the newest schema, holding the template case; the app on it."""
        self.drop(files=False)
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        app = App.open(config(self.workdir, self.url), FixedClock(START))
        template = InboundMail(raw=make_form(date=START), source_id="bench:template")
        outcome, reason = ingest_one(app.runtime(), template)
        if outcome != Outcome.PROCESSED:
            raise RuntimeError(f"the template form was not processed: {reason}")
        with app.db.transaction() as s:
            self.template_id = s.scalars(select(Case.id)).one()
        self.cases = 1
        return app

    def drop(self, *, files: bool = True) -> None:
        """The database gone; with `files`, the working directory (config, var, mail) too."""
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        if files:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def template_deadlines(self, app: App) -> list[Deadline]:
        with app.db.transaction() as s:
            rows = s.scalars(select(Deadline).where(Deadline.case_id == self.template_id,
                                                    Deadline.state == "pending")
                             .order_by(Deadline.due_at, Deadline.id)).all()
            s.expunge_all()
            return list(rows)

    def grow(self, app: App, total: int, *, shift_days: str, state: str = "'open'", stage: str = "1",
             batch: int = 250_000) -> None:
        """Clone the template case up to `total` cases. `shift_days`, `state` and `stage` are SQL
        expressions of `g` (the clone's number): how far its deadlines move, its state, its stage."""
        with app.db.engine.begin() as conn:
            # Secondary indexes are built once at the end: faster than maintained row by row.
            indexes = [(name, sql) for name, sql in conn.execute(text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                "AND tablename IN ('participants', 'deadlines', 'outbox') "
                "AND indexname NOT IN (SELECT conname FROM pg_constraint)"))]
            for name, _ in indexes:
                conn.execute(text(f'DROP INDEX "{name}"'))
        while self.cases < total:
            first, last = self.cases + 1, min(total, self.cases + batch)
            self._clone(app, first, last, shift_days, state, stage)
            self.cases = last
        with app.db.engine.begin() as conn:
            conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
            for _, sql in indexes:
                conn.execute(text(sql))
        with psycopg.connect(self.url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            # The seeding's gigabyte of dirty pages written out now, not by the checkpointer
            # spreading it over the next minutes while the figures are taken.
            conn.execute("CHECKPOINT")

    def _clone(self, app: App, first: int, last: int, shift_days: str, state: str, stage: str) -> None:
        t = self.template_id
        params = {"first": first, "last": last, "t": t}
        with app.db.engine.begin() as conn:
            # The clones reference rows known to exist: no per-row foreign-key triggers.
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            params["before"] = conn.execute(text("SELECT max(id) FROM cases")).scalar()
            conn.execute(text(f"""
                INSERT INTO cases (reference, partnership, policy, state, stage, urgent, fields, missing,
                                   opened_at, stage_started_at, updated_at, raising_agency, receiving_agency)
                SELECT 'SSP-2026-' || lpad(g::text, 7, '0'), c.partnership, c.policy, {state}, {stage},
                       c.urgent, c.fields, c.missing, c.opened_at, c.stage_started_at, c.updated_at,
                       c.raising_agency, c.receiving_agency
                FROM cases c, generate_series(CAST(:first AS integer), CAST(:last AS integer)) g
                WHERE c.id = :t"""), params)
            # The clones just made: their id and number g.
            conn.execute(text("""
                CREATE TEMP TABLE clones ON COMMIT DROP AS
                SELECT id, substr(reference, 10)::int AS g FROM cases WHERE id > :before"""), params)
            conn.execute(text("""
                INSERT INTO participants (case_id, email, name, role, side, agency, stage)
                SELECT k.id, p.email, p.name, p.role, p.side, p.agency, p.stage
                FROM participants p, clones k WHERE p.case_id = :t"""), params)
            conn.execute(text(f"""
                INSERT INTO deadlines (case_id, stage, step, action, due_at, state, rule, skipped, created_at)
                SELECT k.id, d.stage, d.step, d.action, d.due_at + make_interval(days => ({shift_days})::int),
                       'pending', d.rule, d.skipped, d.created_at
                FROM deadlines d, clones k WHERE d.case_id = :t AND d.state = 'pending'"""), params)
            conn.execute(text("""
                INSERT INTO outbox (partnership, case_id, kind, message_id, envelope_from, recipients, subject,
                                    raw, state, attempts, next_attempt_at, created_at, sent_at)
                SELECT o.partnership, k.id, o.kind, '<bench-' || k.g || '.' || o.id || '@mailflow.bench>',
                       o.envelope_from, o.recipients, o.subject, substring(o.raw for 512), 'sent', 1, o.next_attempt_at,
                       o.created_at, o.created_at
                FROM outbox o, clones k
                WHERE o.id = (SELECT min(id) FROM outbox WHERE case_id = :t)"""), params)


def first_reminder(deadlines: list[Deadline]) -> datetime:
    reminders = [d.due_at for d in deadlines if d.action == "remind"]
    if not reminders:
        raise RuntimeError("the template case has no reminder")
    return min(reminders)


def pg_version(url: str) -> str:
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"
