"""The sweeper: reminders at the start of the working day before a deadline, dry runs, routing
when nobody can be found, and restart safety (re-runs, a new process, a crash mid-action)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mailflow.app import App
from mailflow.clock import parse_instant
from mailflow.db.models import Case, Deadline
from mailflow.pipeline import cases
from tests.conftest import make_config, make_form
from tests.engine.conftest import (
    ASC_MANAGER,
    ASC_SENIOR,
    BUSINESS,
    GWH_MANAGER,
    RAISER,
    Harness,
    open_harness,
    recipients,
)

T = parse_instant


# ---------------------------------------------------------------------------- reminders

def test_reminder_fires_once_at_the_start_of_the_working_day_before(h_any):
    h = h_any
    ref = h.open_case()
    # Deadline Wed 30 Dec 17:00; 25 and 28 Dec are bank holidays, so the working day before is Tue 29 Dec.
    h.run_until("2026-12-29T08:59:59")
    assert h.outbox(ref, "reminder") == []
    h.run_until("2026-12-29T09:00:00")
    [reminder] = h.outbox(ref, "reminder")
    assert reminder.created_at == T("2026-12-29T09:00:00")
    assert {GWH_MANAGER, ASC_MANAGER, RAISER} == recipients(reminder)
    assert "due Wed 30 Dec" in reminder.subject
    for at in ("2026-12-29T09:00:00", "2026-12-29T15:00:00", "2026-12-30T16:59:00"):
        assert h.sweep(T(at)).fired == []
    assert len(h.outbox(ref, "reminder")) == 1
    # Stage 2 due Thu 7 Jan: reminded Wed 6 Jan 09:00.
    h.run_until("2027-01-07T12:00:00")
    reminders = h.outbox(ref, "reminder")
    assert [r.created_at for r in reminders] == [T("2026-12-29T09:00:00"), T("2027-01-06T09:00:00")]
    assert {ASC_SENIOR, RAISER} <= recipients(reminders[1])


def test_reminder_before_a_monday_deadline_is_on_friday(h):
    ref = h.open_case()
    h.clock.set(T("2026-12-23T11:30:00"))
    h.reply(ref, ASC_MANAGER, "#escalate")   # Stage 2 due Mon 4 Jan 17:00
    assert [d for d in h.pending(ref) if d[2] == "remind"] == [(2, "resolve", "remind", T("2026-12-31T09:00:00"))]
    h.run_until("2027-01-04T12:00:00")
    assert [r.created_at for r in h.outbox(ref, "reminder")] == [T("2026-12-31T09:00:00")]


def test_reminder_noticed_after_its_deadline_is_dropped(h):
    """The daemon was down over the reminder and the deadline: only the escalation goes out."""
    ref = h.open_case()
    result = h.sweep(T("2027-01-02T10:00:00"))
    assert [f.action for f in result.fired] == ["escalate"] and result.skipped == 1
    assert h.outbox(ref, "reminder") == []
    assert h.case(ref)["stage"] == 2


def test_extended_deadline_gets_its_own_reminder(h):
    """The first deadline's reminder fired; the extension makes a new deadline, which is reminded too."""
    ref = h.open_case()
    h.run_until("2026-12-29T10:00:00")
    assert len(h.outbox(ref, "reminder")) == 1
    h.reply(ref, GWH_MANAGER, "#extend 3 awaiting the GP's records")   # -> Tue 5 Jan 17:00
    h.run_until("2027-01-05T12:00:00")
    reminders = h.outbox(ref, "reminder")
    assert [r.created_at for r in reminders] == [T("2026-12-29T09:00:00"), T("2027-01-04T09:00:00")]
    assert "due Tue 5 Jan" in reminders[1].subject


def test_second_resolution_after_reopening_is_chased_again(h):
    ref = h.open_case()
    h.reply(ref, ASC_MANAGER, "#resolved agreed")
    h.run_until("2027-01-05T10:00:00")   # confirmation due Wed 30 Dec: chased once
    assert len(h.outbox(ref, "confirmation_request")) == 2
    with h.app.db.transaction() as s:
        case = s.scalars(select(Case).where(Case.reference == ref)).one()
        cases.reopen(s, h.rt, case, cases.Actor(BUSINESS), h.clock.now(), "the plan fell through")
    h.reply(ref, ASC_MANAGER, "#resolved agreed again")
    h.run_until("2027-02-01T10:00:00")
    late = [r for r in h.outbox(ref, "confirmation_request")]
    assert len(late) == 4, [(r.created_at, r.subject) for r in late]   # request, chase, request, chase


# ---------------------------------------------------------------------------- dry run

def test_dry_run_reports_and_changes_nothing(h_any):
    h = h_any
    ref = h.open_case()
    before = (h.snapshot(ref), len(h.outbox()), h.ledger(), len(h.events(ref)))
    at = T("2026-12-31T10:00:00")
    result = h.sweep(at, dry_run=True)
    assert [(f.reference, f.action, f.stage) for f in result.fired] == [(ref, "escalate", 1)]
    subjects = [s for s, _ in result.queued]
    assert any("Stage 2" in s and "escalated to you" in s for s in subjects)
    assert any("copy for the business team" in s for s in subjects)
    to_business = [r for s, r in result.queued if "business team" in s]
    assert to_business == [[BUSINESS]]
    assert (h.snapshot(ref), len(h.outbox()), h.ledger(), len(h.events(ref))) == before
    # Twice over, the same answer; then the real sweep does what the dry run said.
    again = h.sweep(at, dry_run=True)
    assert [(s, r) for s, r in again.queued] == result.queued
    real = h.sweep(at)
    assert [(f.reference, f.action) for f in real.fired] == [(ref, "escalate")]
    new = h.outbox()[before[1]:]
    assert [(r.subject, r.recipients) for r in new] == result.queued


# ---------------------------------------------------------------------------- routing

def test_escalation_with_nobody_to_go_to_asks_the_business_team(tmp_path, sqlite_url):
    h = open_harness(tmp_path, sqlite_url, policy="swindon", prefix="SSP")
    try:
        outsider = "kim.volunteer@charity.example.net"
        form = make_form(outsider, other_agency="Riverside Befriending Charity").replace(
            b"Great Western Hospitals NHS Foundation Trust", b"Hilltop Community Lunch Club")
        h.ingest(form)   # neither agency is in the directory
        with h.app.db.transaction() as s:
            ref = s.scalars(select(Case.reference)).one()
        [req] = h.outbox(ref, "routing_request")
        assert req.recipients == [BUSINESS]
        assert "please route" in req.subject
        assert "manager" in h.events(ref, "needs_routing")[0].detail["problem"]
        assert h.outbox(ref, "escalation") == []
        # The clock still runs: reminders go to the business team; at the deadline nobody can be
        # reached at Stage 2 either, so the case is held at Stage 1 and the business team asked again.
        h.run_until("2026-12-31T10:00:00")
        assert h.case(ref)["stage"] == 1
        assert BUSINESS in recipients(h.outbox(ref, "reminder")[0])
        assert len(h.outbox(ref, "routing_request")) == 2
    finally:
        h.app.close()


def test_luton_board_stage_with_no_board_contacts_is_routed(tmp_path, sqlite_url):
    h = open_harness(tmp_path, sqlite_url, policy="luton", prefix="LSAB")
    try:
        ref = h.open_case()
        h.run_until("2027-01-14T17:00:00")
        assert h.case(ref)["stage"] == 4
        routed = [e.detail["problem"] for e in h.events(ref, "needs_routing")]
        assert any("board" in p for p in routed)
        assert any("Stage 4" in r.subject for r in h.outbox(ref, "routing_request"))
    finally:
        h.app.close()


# ---------------------------------------------------------------------------- restart safety

def test_same_sweep_twice_and_after_a_restart_fires_nothing_new(tmp_path, db_url):
    h = open_harness(tmp_path, db_url)
    refs = [h.open_case() for _ in range(3)]
    at = T("2027-01-08T10:00:00")
    first = h.sweep(at)
    assert len(first.fired) == 3 * 2   # each case: Stage 1 -> 2, then Stage 2 -> 3
    outbox, ledger = len(h.outbox()), sorted(h.ledger())
    assert h.sweep(at).fired == []
    h.app.close()
    # A new process on the same database (the old one crashed or was restarted).
    h2 = Harness(App.open(make_config(tmp_path, db_url), h.clock), h.clock)
    try:
        assert h2.sweep(at).fired == []
        assert len(h2.outbox()) == outbox and sorted(h2.ledger()) == ledger
        assert all(h2.case(r)["stage"] == 3 for r in refs)
    finally:
        h2.app.close()


def test_crash_in_the_middle_of_an_action_leaves_it_to_the_next_sweep(tmp_path, sqlite_url, monkeypatch):
    h = open_harness(tmp_path, sqlite_url)
    ref = h.open_case()
    real_start = cases._start  # noqa: SLF001 - the crash is injected here

    def crash(*a, **kw):
        real_start(*a, **kw)   # the escalation is queued... and the process dies before commit
        raise SystemExit("killed")

    monkeypatch.setattr(cases, "_start", crash)
    with pytest.raises(SystemExit):
        h.sweep(T("2026-12-31T10:00:00"))
    monkeypatch.setattr(cases, "_start", real_start)
    h.app.close()
    h2 = Harness(App.open(make_config(tmp_path, sqlite_url), h.clock), h.clock)
    try:
        assert h2.case(ref)["stage"] == 1 and h2.ledger() == []
        assert [r.kind for r in h2.outbox(ref)] == ["acknowledgement", "escalation"]
        result = h2.sweep(T("2026-12-31T10:00:00"))
        assert [f.action for f in result.fired] == ["escalate"]
        assert h2.case(ref)["stage"] == 2
        assert len([r for r in h2.outbox(ref, "escalation") if "Stage 2" in r.subject]) == 1
        assert h2.sweep(T("2026-12-31T10:00:00")).fired == []
        with h2.app.db.transaction() as s:
            done = s.scalars(select(Deadline).where(Deadline.state == "done")).all()
            assert {(d.stage, d.action) for d in done} == {(1, "escalate")}
    finally:
        h2.app.close()


def test_confirmation_deadline_is_reminded_the_working_day_before(h):
    ref = h.open_case()
    h.reply(ref, ASC_MANAGER, "#resolved agreed")   # Mon 21 Dec: written confirmation due Wed 30 Dec
    h.run_until("2026-12-30T12:00:00")
    [reminder] = h.outbox(ref, "reminder")
    assert reminder.created_at == T("2026-12-29T09:00:00")
    assert RAISER in recipients(reminder)
    h.reply(ref, RAISER, "#confirmed")
    h.run_until("2027-02-01T10:00:00")
    assert len(h.outbox(ref, "reminder")) == 1 and len(h.outbox(ref, "confirmation_request")) == 1


def test_manual_escalation_at_the_last_stage_alerts_once(tmp_path, sqlite_url):
    h = open_harness(tmp_path, sqlite_url, policy="kent-medway", prefix="KMSAB")
    try:
        ref = h.open_case()
        h.run_until("2027-01-15T10:00:00")
        assert h.case(ref)["stage"] == 4
        h.reply(ref, "chair@ssp.example.org", "#escalate the agencies cannot agree; panel needed")
        [alert] = h.outbox(ref, "final_alert")
        assert alert.created_at == T("2027-01-15T10:00:00")
        h.run_until("2027-03-01T10:00:00")
        assert len(h.outbox(ref, "final_alert")) == 1
    finally:
        h.app.close()


def test_daemon_passes_by_the_clock_send_each_notice_once(tmp_path, sqlite_url):
    """Through the Maildir and the file transport: passes repeated at the same instant and after
    a restart send nothing twice."""
    from mailflow.daemon import run_pass

    h = open_harness(tmp_path, sqlite_url)
    h.rt.source.deliver(make_form(RAISER), "form-1")
    report = run_pass(h.app)
    assert not report.errors and report.sent["SSP"] == 2   # acknowledgement, Stage 1 escalation
    outbox_dir = tmp_path / "outbox"
    assert len(list(outbox_dir.glob("*.eml"))) == 2
    h.clock.set(T("2026-12-29T09:00:00"))
    assert run_pass(h.app).fired["SSP"] == 1                 # the reminder
    h.clock.set(T("2026-12-30T17:00:00"))
    assert run_pass(h.app).fired["SSP"] == 1                 # the escalation to Stage 2
    assert run_pass(h.app).fired["SSP"] == 0
    sent = sorted(p.name for p in outbox_dir.glob("*.eml"))
    h.app.close()
    h2 = Harness(App.open(make_config(tmp_path, sqlite_url), h.clock), h.clock)
    try:
        report = run_pass(h2.app)
        assert report.fired["SSP"] == 0 and report.sent["SSP"] == 0
        assert sorted(p.name for p in outbox_dir.glob("*.eml")) == sent
        assert len(sent) == 2 + 1 + 2   # + reminder, Stage 2 escalation and business copy
    finally:
        h2.app.close()
