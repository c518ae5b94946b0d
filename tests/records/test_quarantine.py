"""Quarantine review through the command line: list, show (an audit event, raw bytes written on
request), release (through the pipeline as if new, once), discard (the reason kept); every
action in the audit trail with who did it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from mailflow.app import App
from mailflow.cli.main import main
from mailflow.clock import FixedClock, parse_instant
from mailflow.db.models import Case, Event, InboundMessage
from mailflow.pipeline import audit
from mailflow.sources.base import Outcome
from tests.conftest import make_config, make_form, make_message
from tests.engine.conftest import START, Harness

SENDER = "jo.example@gwh.nhs.example.org"


@pytest.fixture
def hq(tmp_path: Path, db_url: str) -> Iterator[Harness]:
    """Swindon, holding more than two messages an hour from one sender."""
    clock = FixedClock(parse_instant(START))
    config = make_config(tmp_path, db_url, extra="[daemon]\nsender_messages_per_hour = 2")
    harness = Harness(App.open(config, clock), clock)
    yield harness
    harness.app.close()


def cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(tmp_path / "mailflow.toml"), *args])
    out, err = capsys.readouterr()
    return code, out, err


def _held(h: Harness) -> list[InboundMessage]:
    with h.app.db.transaction() as s:
        rows = list(s.scalars(select(InboundMessage).where(InboundMessage.outcome == "quarantined")))
        s.expunge_all()
        return rows


def _events(h: Harness, action: str) -> list[Event]:
    with h.app.db.transaction() as s:
        rows = list(s.scalars(select(Event).where(Event.action == action).order_by(Event.id)))
        s.expunge_all()
        return rows


def test_a_released_message_goes_through_the_pipeline_once(
        hq: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(3):
        hq.ingest(make_form(SENDER, date=hq.clock.now()))
    [held] = _held(hq)
    assert held.reason and held.reason.startswith("held: too many")
    code, out, _ = cli(capsys, tmp_path, "quarantine", "list")
    assert code == 0 and f"#{held.id}" in out and SENDER in out and "held: too many" in out

    later = (hq.clock.now() + timedelta(hours=2)).isoformat()
    code, out, err = cli(capsys, tmp_path, "quarantine", "release", str(held.id), "--by", "sam.reviewer",
                         "--reason", "a colleague's real form", "--at", later)
    assert code == 0, err
    assert f"#{held.id} released: processed (case SSP-2026-0003)" in out
    with hq.app.db.transaction() as s:
        inbound = s.get(InboundMessage, held.id)
        assert inbound is not None and inbound.outcome == "processed" and inbound.kind == "form"
        case = s.scalars(select(Case).where(Case.reference == "SSP-2026-0003")).one()
        assert inbound.case_id == case.id
        assert s.scalar(select(InboundMessage.id).order_by(InboundMessage.id.desc())) == held.id  # no new row
    assert [r.kind for r in hq.outbox("SSP-2026-0003")].count("acknowledgement") == 1
    [released] = _events(hq, "quarantine_released")
    assert released.actor == "cli:sam.reviewer" and released.inbound_id == held.id
    assert released.detail["note"] == "a colleague's real form" and released.detail["outcome"] == "processed"

    code, _, err = cli(capsys, tmp_path, "quarantine", "release", str(held.id), "--at", later)
    assert code == 1 and "is not quarantined (it is processed)" in err
    assert [r.kind for r in hq.outbox("SSP-2026-0003")].count("acknowledgement") == 1
    with hq.app.db.transaction() as s:
        assert audit.verify(s, "SSP").ok


def test_a_held_message_released_within_the_hour_is_not_held_again(
        hq: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The hourly limit holds mail nobody has looked at; a reviewer who releases one held message
    while its sender is still over the limit gets it through, and only that one."""
    for _ in range(4):
        hq.ingest(make_form(SENDER, date=hq.clock.now()))
    first, second = _held(hq)
    at = (hq.clock.now() + timedelta(minutes=10)).isoformat()
    code, out, err = cli(capsys, tmp_path, "quarantine", "release", str(first.id), "--by", "sam.reviewer",
                         "--reason", "a real form", "--at", at)
    assert code == 0, err
    assert f"#{first.id} released: processed (case SSP-2026-0003)" in out
    assert [r.kind for r in hq.outbox("SSP-2026-0003")].count("acknowledgement") == 1
    # The sender is still over the limit for new mail, and the other held message is still held.
    assert hq.ingest(make_form(SENDER, date=hq.clock.now())) == (Outcome.QUARANTINED, first.reason)
    held_now = {m.id for m in _held(hq)}
    assert second.id in held_now and first.id not in held_now and len(held_now) == 2


def test_show_is_an_audit_event_and_can_write_the_raw_message(
        hq: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(3):
        hq.ingest(make_form(SENDER, date=hq.clock.now()))
    [held] = _held(hq)
    raw_file = tmp_path / "review" / "held.eml"
    code, out, _ = cli(capsys, tmp_path, "quarantine", "show", str(held.id), "--raw", str(raw_file))
    assert code == 0
    assert "subject:     Escalation form" in out and "Ada Testperson" in out
    assert raw_file.read_bytes() == held.raw and (raw_file.stat().st_mode & 0o777) == 0o600
    [viewed] = _events(hq, "viewed")
    assert viewed.inbound_id == held.id and viewed.detail == {"via": "quarantine show"}
    assert viewed.actor.startswith("cli:")


def test_discard_keeps_the_reason_and_needs_one(
        h: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = make_message(SENDER, "x" * 20_000, "a body")   # a Subject over the header bound
    outcome, _ = h.ingest(raw)
    assert outcome == Outcome.QUARANTINED
    [held] = _held(h)

    code, _, err = cli(capsys, tmp_path, "quarantine", "release", str(held.id), "--by", "sam")
    assert code == 1 and "stays quarantined: the parser still refuses it" in err
    assert _events(h, "quarantine_release_failed")[0].actor == "cli:sam"

    code, _, err = cli(capsys, tmp_path, "quarantine", "discard", str(held.id))
    assert code == 2 and "--reason" in err
    code, out, _ = cli(capsys, tmp_path, "quarantine", "discard", str(held.id), "--reason", "spam, not a form",
                       "--by", "sam")
    assert code == 0 and "discarded" in out
    with h.app.db.transaction() as s:
        inbound = s.get(InboundMessage, held.id)
        assert inbound is not None and inbound.outcome == "discarded"
        assert inbound.reason == "discarded: spam, not a form" and inbound.raw == raw
    [discarded] = _events(h, "quarantine_discarded")
    assert discarded.actor == "cli:sam" and discarded.detail["reason"] == "spam, not a form"
    assert discarded.detail["was"] == held.reason
    code, out, _ = cli(capsys, tmp_path, "quarantine", "list")
    assert out.strip() == "nothing quarantined"
    code, out, _ = cli(capsys, tmp_path, "quarantine", "list", "--all")
    assert f"#{held.id}" in out and "discarded: spam" in out
    code, _, err = cli(capsys, tmp_path, "quarantine", "discard", "999", "--reason", "x")
    assert code == 1 and "no inbound message #999" in err
