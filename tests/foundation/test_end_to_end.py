"""The thin end-to-end flow on the command line: a form lands in the Maildir, `mailflow run --once`
records a case and sends an acknowledgement whose subject carries the reference and no personal data."""

from __future__ import annotations

import email
import json
import os
import subprocess
import sys
from email import policy
from pathlib import Path

from mailflow.sources.maildir import MaildirSource
from tests.conftest import make_form, make_message, write_config

ROOT = Path(__file__).resolve().parents[2]


def mailflow(config: Path, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MAILFLOW_CONFIG": str(config), **(extra_env or {})}
    return subprocess.run([sys.executable, "-m", "mailflow", *args], capture_output=True, text=True, env=env,
                          timeout=120, cwd=config.parent)


def outbox_messages(tmp_path: Path) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(p.read_bytes(), policy=policy.default)  # type: ignore[misc]
            for p in sorted((tmp_path / "outbox").glob("*.eml"))]


def test_form_in_maildir_becomes_case_and_acknowledgement(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path, db_url)
    MaildirSource(tmp_path / "mail").deliver(make_form(), "1.eml")

    run = mailflow(config, "run", "--once", "--at", "2026-12-21T10:05:00")
    assert run.returncode == 0, run.stderr

    listed = mailflow(config, "cases", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    cases = json.loads(listed.stdout)
    assert [c["reference"] for c in cases] == ["SSP-2026-0001"]
    assert cases[0]["state"] == "open" and cases[0]["stage"] == 1
    assert cases[0]["next_due"] == "2026-12-30T17:00:00+00:00"  # 5 working days, Christmas skipped

    acks = [m for m in outbox_messages(tmp_path) if "escalation received" in str(m["Subject"])]
    assert len(acks) == 1
    ack = acks[0]
    subject = str(ack["Subject"])
    assert subject.startswith("[SSP-2026-0001] Stage 1:")
    for personal in ("Ada", "Testperson", "1951", "Example Road", "SN1"):
        assert personal not in subject
    assert ack["To"] == "jo.example@gwh.nhs.example.org"
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["X-Auto-Response-Suppress"] == "OOF, AutoReply"
    assert ack["Message-ID"].startswith("<SSP-2026-0001.")
    assert "+SSP-2026-0001." in ack["Reply-To"]
    html = ack.get_body(("html",))
    assert html is not None and "SSP-2026-0001" in html.get_content()
    # The message left new/ for the processed folder only after the commit.
    assert not list((tmp_path / "mail" / "new").iterdir())
    assert len(list((tmp_path / "mail" / ".Processed" / "cur").iterdir())) == 1


def test_unparseable_message_is_quarantined_and_the_business_team_told(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path, db_url, extra='[limits]\nmax_message_bytes = 2000\n')
    source = MaildirSource(tmp_path / "mail")
    source.deliver(make_message("big@example.org", "Huge", "x" * 5000), "big.eml")
    source.deliver(make_form(), "form.eml")

    run = mailflow(config, "run", "--once", "--at", "2026-12-21T10:05:00")
    assert run.returncode == 0, run.stderr  # the daemon goes on after a bad message

    assert len(list((tmp_path / "mail" / ".Quarantine" / "cur").iterdir())) == 1
    assert len(list((tmp_path / "mail" / ".Processed" / "cur").iterdir())) == 1
    notices = [m for m in outbox_messages(tmp_path) if "quarantined" in str(m["Subject"])]
    assert len(notices) == 1 and notices[0]["To"] == "business.team@ssp.example.org"
    body = notices[0].get_body(("plain",)).get_content()
    assert "Reason: message larger than 2000 bytes" in body
    assert json.loads(mailflow(config, "cases", "list", "--format", "json").stdout)[0]["reference"] == "SSP-2026-0001"


def test_ingest_command_reads_eml_files_and_mbox(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path, db_url)
    eml = tmp_path / "one.eml"
    eml.write_bytes(make_form(message_id="<one@example.org>"))
    mbox = tmp_path / "two.mbox"
    mbox.write_bytes(b"From someone@example.org Mon Dec 21 10:00:00 2026\n" +
                     make_form("sam.imaginary@awp.nhs.example.org", message_id="<two@example.org>") + b"\n")
    assert mailflow(config, "db", "upgrade").returncode == 0   # only `run` and `db upgrade` migrate
    result = mailflow(config, "ingest", str(eml), str(mbox), "--at", "2026-12-21T11:00")
    assert result.returncode == 0, result.stderr
    assert "2 processed" in result.stdout
    again = mailflow(config, "ingest", str(eml), "--at", "2026-12-21T11:00")
    assert "1 processed" in again.stdout
    refs = [c["reference"] for c in json.loads(mailflow(config, "cases", "list", "--format", "json").stdout)]
    assert refs == ["SSP-2026-0001", "SSP-2026-0002"]  # the repeat was recognised, not a new case


def test_cases_show_explains_deadlines(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path, db_url)
    (tmp_path / "f.eml").write_bytes(make_form())
    assert mailflow(config, "db", "upgrade").returncode == 0
    assert mailflow(config, "ingest", str(tmp_path / "f.eml"), "--at", "2026-12-21T10:00").returncode == 0
    shown = mailflow(config, "cases", "show", "SSP-2026-0001", "--format", "json")
    story = json.loads(shown.stdout)
    escalate = next(d for d in story["deadlines"] if d["action"] == "escalate")
    assert escalate["due"] == "2026-12-30T17:00:00+00:00"
    assert "5 working days" in escalate["rule"]
    assert ["2026-12-25", "Christmas Day"] in escalate["skipped"]
    assert {m["kind"] for m in story["sent"]} >= {"acknowledgement", "escalation"}
    text = mailflow(config, "cases", "show", "SSP-2026-0001")
    assert "Wed 30 Dec 2026 17:00 GMT" in text.stdout and "Christmas Day" in text.stdout
    missing = mailflow(config, "cases", "show", "SSP-2026-0099")
    assert missing.returncode == 1 and "no case SSP-2026-0099" in missing.stderr
