"""The audit trail is a hash chain per partnership: every edit, insertion and deletion is found
and the event named, on SQLite and PostgreSQL; workers appending at once keep one chain."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, insert, select, text, update

from mailflow.cli.main import main
from mailflow.core import audit_chain
from mailflow.db.models import AuditHead, Case, Event
from mailflow.pipeline import audit
from tests.engine.conftest import ASC_MANAGER, Harness, open_harness


def _populate(h: Harness) -> list[str]:
    refs = [h.open_case(), h.open_case()]
    h.reply(refs[0], ASC_MANAGER, "#note spoke to the ward today")
    h.run_until(h.clock.now() + timedelta(days=20))   # reminders, escalations to Stage 2
    return refs


def _verdict(h: Harness) -> audit_chain.Verdict:
    with h.app.db.transaction() as s:
        return audit.verify(s, "SSP")


def _events(h: Harness) -> list[Event]:
    with h.app.db.transaction() as s:
        rows = list(s.scalars(select(Event).order_by(Event.seq)))
        s.expunge_all()
        return rows


def test_a_populated_trail_verifies_and_every_event_is_chained(h_any: Harness) -> None:
    _populate(h_any)
    events = _events(h_any)
    assert len(events) >= 6
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].prev_hash == audit_chain.GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))
    verdict = _verdict(h_any)
    assert verdict.ok, verdict.problems
    assert verdict.events == len(events) and verdict.head_seq == len(events)


@pytest.mark.parametrize("tamper", ["detail", "actor", "at", "action", "case"])
def test_an_edited_event_is_named(h_any: Harness, tamper: str) -> None:
    refs = _populate(h_any)
    victim = _events(h_any)[3]
    with h_any.app.db.transaction() as s:
        other_case = s.scalars(select(Case.id).where(Case.reference == refs[1])).one()
        values = {"detail": {"text": "changed afterwards"}, "actor": "someone.else@example.org",
                  "at": victim.at + timedelta(minutes=1), "action": "closed",
                  "case": None}[tamper]
        column = "case_id" if tamper == "case" else tamper
        if tamper == "case":
            values = other_case if victim.case_id != other_case else None
        s.execute(update(Event).where(Event.id == victim.id).values({column: values}))
    problems = _verdict(h_any).problems or []
    assert any(p.event_id == victim.id and "edited" in p.what for p in problems), problems


def test_an_edit_with_its_hash_recomputed_breaks_the_next_link(h: Harness) -> None:
    _populate(h)
    victim, after = _events(h)[2:4]
    content = audit_chain.content_hash(victim.actor, None, victim.inbound_id, {"forged": True})
    digest = audit_chain.event_hash("SSP", victim.seq or 0, victim.prev_hash or "", victim.at, victim.action, content)
    with h.app.db.transaction() as s:
        s.execute(update(Event).where(Event.id == victim.id)
                  .values(detail={"forged": True}, case_id=None, content_hash=content, hash=digest))
    problems = _verdict(h).problems or []
    assert [p.event_id for p in problems] == [after.id]
    assert "inserted, deleted or re-linked" in problems[0].what


def test_a_deleted_event_is_found_in_the_middle_and_at_the_end(h_any: Harness) -> None:
    _populate(h_any)
    events = _events(h_any)
    middle, last = events[4], events[-1]
    with h_any.app.db.transaction() as s:
        s.execute(delete(Event).where(Event.id.in_([middle.id, last.id])))
    problems = _verdict(h_any).problems or []
    text_ = [str(p) for p in problems]
    assert any(p.seq == middle.seq and "deleted" in p.what for p in problems), text_
    assert any(p.event_id == events[5].id and "re-linked" in p.what for p in problems), text_
    assert any(p.seq == last.seq and "last 1 event(s)" in p.what for p in problems), text_


def test_inserted_events_are_found(h_any: Harness) -> None:
    _populate(h_any)
    events = _events(h_any)
    last = events[-1]
    forged_content = audit_chain.content_hash("cli:intruder", None, None, {})
    forged_hash = audit_chain.event_hash("SSP", (last.seq or 0) + 1, last.hash or "", last.at, "note", forged_content)
    with h_any.app.db.transaction() as s:
        # Appended after the head with a well-formed link, and one outside the chain entirely.
        s.execute(insert(Event).values(partnership="SSP", seq=(last.seq or 0) + 1, at=last.at, actor="cli:intruder",
                                       action="note", detail={}, prev_hash=last.hash, content_hash=forged_content,
                                       hash=forged_hash))
        s.execute(insert(Event).values(partnership="SSP", at=last.at, actor="cli:intruder", action="note",
                                       detail={"text": "backdated"}))
        sneaked = s.scalar(select(func.max(Event.id)))
    problems = _verdict(h_any).problems or []
    assert any("after the chain head" in p.what for p in problems), problems
    assert any(p.event_id == sneaked and "not in the chain" in p.what for p in problems), problems


def test_an_event_renumbered_into_a_gap_is_found(h: Harness) -> None:
    """Insertion in the middle: move later events up one and slot a forged one in."""
    _populate(h)
    events = _events(h)
    with h.app.db.transaction() as s:
        s.execute(update(Event).where(Event.seq > 3).values(seq=Event.seq + 100000))
        s.execute(text("UPDATE events SET seq = seq - 100000 + 1 WHERE seq > 100000"))
        s.execute(update(AuditHead).values(seq=AuditHead.seq + 1))
        s.execute(insert(Event).values(partnership="SSP", seq=4, at=events[3].at, actor="cli:intruder",
                                       action="resolved", detail={}, prev_hash=events[2].hash,
                                       content_hash="0" * 64, hash="1" * 64))
    problems = _verdict(h).problems or []
    assert any(p.seq == 4 and "edited" in p.what for p in problems), problems
    assert any(p.event_id == events[3].id for p in problems), problems


def test_erasing_content_by_hand_is_not_retention(h: Harness) -> None:
    _populate(h)
    victim = _events(h)[2]
    with h.app.db.transaction() as s:
        s.execute(update(Event).where(Event.id == victim.id)
                  .values(actor="", detail={}, case_id=None, inbound_id=None, erased_by=victim.id))
    problems = _verdict(h).problems or []
    assert any(p.event_id == victim.id and "without a purge" in p.what for p in problems), problems


def test_audit_verify_command_exit_codes(h: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _populate(h)
    config = str(tmp_path / "mailflow.toml")
    assert main(["--config", config, "audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SSP: OK:") and "head seq" in out
    victim = _events(h)[1]
    with h.app.db.transaction() as s:
        s.execute(update(Event).where(Event.id == victim.id).values(detail={"x": 1}))
    assert main(["--config", config, "audit", "verify", "--partnership", "SSP"]) == 1
    out = capsys.readouterr().out
    assert "FAILED (1 problem)" in out and f"event #{victim.id} (seq {victim.seq})" in out


def test_a_rolled_back_savepoint_leaves_no_hole(h: Harness) -> None:
    ref = h.open_case()
    with h.app.db.transaction() as s:
        case = s.scalars(select(Case).where(Case.reference == ref)).one()
        audit.append_event(s, h.clock.now(), "cli:a", "note", case=case, text="kept")
        try:
            with s.begin_nested():
                audit.append_event(s, h.clock.now(), "cli:b", "note", case=case, text="rolled back")
                s.flush()
                raise RuntimeError("boom")
        except RuntimeError:
            pass
    assert [e.detail.get("text") for e in _events(h)][-1] == "kept"
    assert _verdict(h).ok


@pytest.mark.postgres
def test_workers_appending_at_once_keep_one_chain(tmp_path: Path, pg_url: str) -> None:
    """Four threads, each its own sessions, append 25 events each to one partnership."""
    h = open_harness(tmp_path, pg_url)
    try:
        ref = h.open_case()
        barrier = threading.Barrier(4)
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                barrier.wait()
                for i in range(25):
                    with h.app.db.transaction() as s:
                        case = s.scalars(select(Case).where(Case.reference == ref)).one()
                        audit.append_event(s, h.clock.now(), f"cli:w{n}", "note", case=case, text=str(i))
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        verdict = _verdict(h)
        assert verdict.ok, verdict.problems
        assert verdict.events == len(_events(h)) >= 101
    finally:
        h.app.close()


def test_cases_show_is_itself_an_audit_event(h: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = h.open_case()
    config = str(tmp_path / "mailflow.toml")
    assert main(["--config", config, "cases", "show", ref, "--by", "dpo.officer"]) == 0
    assert main(["--config", config, "cases", "show", ref]) == 0
    capsys.readouterr()
    viewed = h.events(ref, "viewed")
    assert [e.actor for e in viewed][0] == "cli:dpo.officer"
    assert viewed[1].actor.startswith("cli:") and viewed[1].actor != "cli:dpo.officer"
    assert all(e.detail == {"via": "cases show"} for e in viewed)
    assert _verdict(h).ok
