"""Shared fixtures: a database on SQLite and on PostgreSQL, an app on a temp Maildir and outbox,
a frozen clock, and a builder of realistic messages (invented people only)."""

from __future__ import annotations

import os
import secrets
import subprocess
import textwrap
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from mailflow.app import App
from mailflow.clock import FixedClock, parse_instant
from mailflow.config import Config, parse_config

PG_ADMIN_URL = os.environ.get("MAILFLOW_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def postgres_available() -> str | None:
    """None when PostgreSQL answers, else the reason to skip."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL.replace("+psycopg", ""), connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001
        return f"PostgreSQL not reachable at 127.0.0.1:5432 database test ({type(exc).__name__})"


_PG_SKIP = postgres_available()

# The seed policies' source texts sit beside the repository (../shared/seeds from its root);
# MAILFLOW_SEEDS_DIR points elsewhere. A clone made elsewhere on the same machine (CI clones the
# repository into a directory of its own) finds them beside the repository it was cloned from.
# Missing: the tests that need them skip, but fail in CI.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def seeds_dir() -> Path:
    if os.environ.get("MAILFLOW_SEEDS_DIR"):
        return Path(os.environ["MAILFLOW_SEEDS_DIR"])
    beside = PROJECT_ROOT.parent / "shared" / "seeds"
    if beside.is_dir():
        return beside
    origin = _origin_checkout()
    if origin is not None and (origin.parent / "shared" / "seeds").is_dir():
        return origin.parent / "shared" / "seeds"
    return beside


def _origin_checkout() -> Path | None:
    """The local repository this one was cloned from, if its origin is a path on this machine."""
    try:
        url = subprocess.run(["git", "-C", str(PROJECT_ROOT), "config", "--get", "remote.origin.url"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    path = Path(url.removeprefix("file://"))
    return path.resolve() if url and path.is_absolute() and path.is_dir() else None


@pytest.fixture(scope="session")
def seeds() -> Path:
    found = seeds_dir()
    if not found.is_dir():
        reason = f"seed texts not found at {found} (set MAILFLOW_SEEDS_DIR)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run with them")
        pytest.skip(reason)
    return found


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    if _PG_SKIP:
        pytest.skip(_PG_SKIP)
    import psycopg

    schema = f"mf_{secrets.token_hex(6)}"
    admin = PG_ADMIN_URL.replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mailflow.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(parse_instant("2026-12-21T10:00:00"))


def write_config(tmp_path: Path, db_url: str, policy: str = "swindon", prefix: str = "SSP",
                 extra_partnership: str = "", extra: str = "", mailbox: str | None = None,
                 transport: str | None = None) -> Path:
    """A config on the bundled example directory; a Maildir and .eml files unless `mailbox` or
    `transport` (the body of each TOML table) say otherwise."""
    from mailflow.resources import bundled_dir

    directory = bundled_dir("examples") / "directory.example.toml"
    mailbox = mailbox or f'kind = "maildir"\npath = "{tmp_path / "mail"}"'
    transport = transport or f'kind = "file"\npath = "{tmp_path / "outbox"}"'
    path = tmp_path / "mailflow.toml"
    path.write_text(textwrap.dedent(f"""\
        [mailflow]
        database_url = "{db_url}"
        var_dir = "{tmp_path / 'var'}"
        message_id_domain = "mailflow.test"
        {extra}
        [[partnership]]
        name = "Test Partnership"
        prefix = "{prefix}"
        policy = "{policy}"
        address = "safeguarding@ssp.example.org"
        business_team = ["business.team@ssp.example.org"]
        directory = "{directory}"
        {extra_partnership}
        """) + f"[partnership.mailbox]\n{mailbox}\n[partnership.transport]\n{transport}\n")
    return path


def make_config(tmp_path: Path, db_url: str, **kw: Any) -> Config:
    import tomllib

    path = write_config(tmp_path, db_url, **kw)
    return parse_config(tomllib.loads(path.read_text()), path)


@pytest.fixture
def app(tmp_path: Path, db_url: str, clock: FixedClock) -> Iterator[App]:
    application = App.open(make_config(tmp_path, db_url), clock)
    yield application
    application.close()


def make_form(sender: str = "jo.example@gwh.nhs.example.org", *, message_id: str | None = None,
              other_agency: str = "Swindon Borough Council - Adult Social Care",
              at_risk: bool = False, date: datetime | None = None, omit: tuple[str, ...] = ()) -> bytes:
    """A Swindon Stage 1/2 pro-forma pasted into a plain-text body (invented people)."""
    lines = {
        "adult_name": "Name of adult: Ada Testperson",
        "adult_dob": "DOB: 03/04/1951",
        "adult_address": "Address: 1 Example Road, Swindon SN1 0XX",
        "raiser": "Name, Role and Agency of person completing this form: Jo Example, Ward Sister, "
                  "Great Western Hospitals NHS Foundation Trust",
        "raiser_email": f"Your email: {sender}",
        "others_involved": f"Other agency: {other_agency}",
        "disagreement_summary": "Brief details of the professional disagreement: Disagreement about "
                                "the discharge care package and whether a section 42 enquiry is needed.",
    }
    body = "Case Resolution Stage 1 / 2 Pro-forma\n\n" + "\n".join(v for k, v in lines.items() if k not in omit)
    if at_risk:
        body += "\nIs the adult at immediate risk of harm: Yes"
    return make_message(sender, "Escalation form", body, message_id=message_id, date=date)


def make_message(sender: str, subject: str, body: str, *, to: str = "safeguarding@ssp.example.org",
                 message_id: str | None = None, in_reply_to: str | None = None,
                 references: str | None = None, date: datetime | None = None,
                 headers: dict[str, str] | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or parse_instant("2026-12-21T09:55:00"))
    msg["Message-ID"] = message_id or f"<{secrets.token_hex(8)}@example.org>"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for k, v in (headers or {}).items():
        msg[k] = v
    msg.set_content(body)
    return msg.as_bytes()
