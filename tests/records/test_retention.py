"""Retention and subject access: `purge --dry-run` changes nothing; `purge` removes a case closed
more than the configured years ago (its messages in and out, their raw bytes and attachments,
the sent-mail files, deadlines, people) and old case-less mail, keeps live and recent cases,
keeps anonymous counts so the Board report for the old period adds up the same, and leaves an
audit chain that still verifies; `export-case` writes everything held about a case."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailflow.cli.main import main
from mailflow.clock import parse_instant
from mailflow.db.models import Case, Deadline, Event, InboundMessage, OutboxMessage, Participant, RetainedCount
from mailflow.pipeline import audit
from mailflow.pipeline.retention import years_before
from tests.conftest import make_message
from tests.engine.conftest import RAISER, Harness
from tests.records.test_report import POLICE_FORM

LATER = "2035-06-01T10:00:00"   # 8 years after mid-2027


def cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(tmp_path / "mailflow.toml"), *args])
    out, err = capsys.readouterr()
    return code, out, err


def _close(h: Harness, tmp_path: Path, ref: str, at: str, raiser: str = RAISER) -> None:
    assert main(["--config", str(tmp_path / "mailflow.toml"), "cases", "resolve", ref, "agreed", "--at", at]) == 0
    h.clock.set(parse_instant(at))
    h.reply(ref, raiser, "#confirmed")
    assert h.case(ref)["state"] == "closed"


def _counts(h: Harness) -> dict[str, int]:
    with h.app.db.transaction() as s:
        return {m.__name__: s.scalar(select(func.count()).select_from(m)) or 0
                for m in (Case, InboundMessage, OutboxMessage, Participant, Deadline, Event)}


def _populate(h: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, str, str, str]:
    old = h.open_case()                                                        # closed Dec 2026: purged
    police = h.ingest(make_message("pat.sample@police.example.org", "Escalation form", POLICE_FORM,
                                   date=h.clock.now()))
    assert police[0].value == "processed"
    live = h.open_case()                                                       # still open: kept
    h.ingest(make_message(RAISER, "x" * 20_000, "an unreadable message"))      # quarantined, no case
    _close(h, tmp_path, old, "2026-12-22T10:00:00")
    _close(h, tmp_path, "SSP-2026-0002", "2026-12-23T10:00:00", raiser="pat.sample@police.example.org")
    h.clock.set(parse_instant("2027-07-05T10:00:00"))
    recent = h.open_case()                                                     # closed July 2027: kept
    _close(h, tmp_path, recent, "2027-07-06T10:00:00")
    assert cli(capsys, tmp_path, "outbox", "flush", "--at", "2027-07-06T11:00:00")[0] == 0
    return old, "SSP-2026-0002", live, recent


def _report(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> dict[tuple[str, str, str], str]:
    code, out, err = cli(capsys, tmp_path, "report", "--from", "2026-12-01", "--to", "2026-12-31", "--at", LATER)
    assert code == 0, err
    rows = [line.split(",") for line in out.splitlines()[1:]]
    return {(r[0], r[1], r[2]): r[3] for r in rows if r[2] != "already purged (monthly totals)"}


def test_purge_dry_run_then_real(h_any: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, police, live, recent = _populate(h_any, tmp_path, capsys)
    sent_files = sorted((tmp_path / "outbox").glob("*.eml"))
    old_files = [f for f in sent_files if old.lower().replace("-", "") in f.name.lower().replace("-", "")
                 or old in f.read_text(errors="replace")]
    assert old_files
    before = _counts(h_any)
    report_before = _report(capsys, tmp_path)
    assert report_before[("summary", "cases", "escalations raised")] == "3"

    code, out, _ = cli(capsys, tmp_path, "purge", "--dry-run", "--at", LATER)
    assert code == 0
    assert "would remove 2 cases" in out and f"{old}, {police}" in out
    assert _counts(h_any) == before and all(f.exists() for f in sent_files)

    code, out, _ = cli(capsys, tmp_path, "purge", "--at", LATER, "--by", "dpo")
    # Two forms, two confirmations and the quarantined message of no case.
    assert code == 0 and "removed 2 cases, 5 messages in" in out
    with h_any.app.db.transaction() as s:
        refs = set(s.scalars(select(Case.reference)))
        assert refs == {live, recent}
        assert s.scalar(select(func.count()).select_from(InboundMessage).where(
            InboundMessage.outcome == "quarantined")) == 0
        assert s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.case_id.is_(None))) == 0
        erased = list(s.scalars(select(Event).where(Event.erased_by.is_not(None))))
        assert erased and all(e.actor == "" and e.detail == {} and e.case_id is None for e in erased)
        [purged] = s.scalars(select(Event).where(Event.action == "purged")).all()
        assert purged.actor == "cli:dpo" and purged.detail["cases"] == 2
        assert purged.detail["events_erased"] == len(erased)
        assert s.scalar(select(func.sum(RetainedCount.cases))) == 2
        assert audit.verify(s, "SSP").ok
        text = json.dumps([e.detail for e in s.scalars(select(Event))])
        assert "Ada Testperson" not in text and "Bea Madeup" not in text
    assert not any(f.exists() for f in old_files)
    assert any(f.exists() for f in sent_files if f not in old_files)
    assert _counts(h_any)["Event"] == before["Event"] + 1             # erased in place, one purge event

    # The Board report for December 2026 adds up as before, now from the kept counts.
    assert _report(capsys, tmp_path) == report_before
    code, out, _ = cli(capsys, tmp_path, "audit", "verify")
    assert code == 0 and "erased by retention" in out
    code, out, _ = cli(capsys, tmp_path, "purge", "--at", LATER)
    assert "removed 0 cases" in out
    assert cli(capsys, tmp_path, "export-case", old, "--output", str(tmp_path / "sar"))[2].strip() == \
        f"mailflow: no case {old}"


def test_years_before_handles_a_leap_day() -> None:
    assert years_before(parse_instant("2036-02-29T12:00:00"), 7) == parse_instant("2029-02-28T12:00:00")
    assert years_before(parse_instant("2036-02-29T12:00:00"), 8) == parse_instant("2028-02-29T12:00:00")


def test_export_case_writes_everything_held_named_by_reference(
        h: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = h.open_case()
    h.reply(ref, RAISER, "#note the ward has called twice")
    out_dir = tmp_path / "sar"
    code, out, _ = cli(capsys, tmp_path, "export-case", ref, "--output", str(out_dir), "--by", "dpo")
    assert code == 0
    target = out_dir / f"{ref}.zip"
    assert (target.stat().st_mode & 0o777) == 0o600
    with zipfile.ZipFile(target) as z:
        names = z.namelist()
        assert all(n.startswith(f"{ref}/") for n in names)
        record = json.loads(z.read(f"{ref}/case.json"))
        with h.app.db.transaction() as s:
            raws = [bytes(m.raw) for m in s.scalars(select(InboundMessage).order_by(InboundMessage.id))]
            sent = [bytes(m.raw) for m in s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]
        assert [z.read(f"{ref}/{m['file']}") for m in record["messages_received"]] == raws
        assert [z.read(f"{ref}/{m['file']}") for m in record["messages_sent"]] == sent
    assert record["case"]["fields"]["adult_name"] == "Ada Testperson"
    assert {p["email"] for p in record["participants"]} >= {RAISER}
    assert record["deadlines"] and all(d["rule"] for d in record["deadlines"])
    actions = [e["action"] for e in record["audit"]]
    assert actions[0] == "opened" and "note" in actions and actions[-1] == "viewed"
    assert record["audit"][-1]["detail"] == {"via": "export-case"} and record["exported_by"] == "cli:dpo"
    assert h.events(ref, "viewed")[-1].actor == "cli:dpo"

    code, _, err = cli(capsys, tmp_path, "export-case", ref, "--output", str(out_dir))
    assert code == 1 and "exists: not overwritten" in err
    code, _, _ = cli(capsys, tmp_path, "export-case", ref.lower(), "--output", str(out_dir), "--folder")
    assert code == 0
    folder = out_dir / ref
    assert json.loads((folder / "case.json").read_text())["reference"] == ref
    assert (folder / "messages" / "in-001.eml").read_bytes() == raws[0]
    assert (folder.stat().st_mode & 0o777) == 0o700
    with h.app.db.transaction() as s:
        assert audit.verify(s, "SSP").ok
