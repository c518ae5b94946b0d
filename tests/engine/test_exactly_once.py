"""Exactly once for every kind of mail: the final alert once per case and stage however it is
asked for; one reply moves a case at most one stage; a flood of #escalate from one manager
cannot walk a case through the stages; a second bounce of one message sends no second notice."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailflow.clock import parse_instant
from mailflow.core.lifecycle import InvalidTransition
from mailflow.db.store import find_case
from mailflow.pipeline import cases
from tests.engine.conftest import ASC_MANAGER, ASC_SENIOR, BUSINESS, CHAIR, GWH_MANAGER, RAISER, open_harness

T = parse_instant
DSN = (Path(__file__).resolve().parents[1] / "fixtures" / "mail" / "bounce_postfix_dsn.eml").read_bytes()


def test_final_alert_once_however_often_it_is_asked_for(tmp_path, db_url):
    h = open_harness(tmp_path, db_url)
    try:
        ref = h.open_case()
        h.run_until("2027-01-15T10:00:00")
        assert h.case(ref)["stage"] == 4
        h.reply(ref, CHAIR, "#escalate the agencies cannot agree; a panel is needed")
        h.clock.set(T("2027-01-15T11:00:00"))
        h.reply(ref, CHAIR, "#escalate still no agreement")
        with h.app.db.transaction() as s, pytest.raises(InvalidTransition, match="already given"):
            cases.escalate(s, h.rt, find_case(s, ref), cases.Actor("cli:business"), h.clock.now(),
                           "from the command line", clock_start=h.clock.now())
        h.run_until("2027-03-01T10:00:00")     # and the deadline that would have given it
        [alert] = h.outbox(ref, "final_alert")
        assert alert.created_at == T("2027-01-15T10:00:00")
        refusal = h.outbox(ref, "case_update")[-1]
        assert refusal.recipients == [CHAIR] and "#escalate not applied" in refusal.subject
        assert "awaiting the chair / the Board" in h.events(ref, "command_refused")[-1].detail["why"]
        assert len(h.events(ref, "final_alert")) == 1
    finally:
        h.app.close()


def test_one_reply_moves_a_case_at_most_one_stage(h_any):
    h = h_any
    ref = h.open_case()
    h.reply(ref, ASC_MANAGER, "#escalate we cannot agree\n#escalate and the adult is at risk")
    assert h.case(ref)["stage"] == 2
    assert len(h.events(ref, "escalated")) == 1
    assert [e.detail["command"] for e in h.events(ref, "command_refused")] == ["escalate"]


def test_a_flood_of_escalate_from_one_manager_moves_one_stage(h):
    ref = h.open_case()
    for minute in range(4):
        h.clock.set(T(f"2026-12-21T11:0{minute}:00"))
        h.reply(ref, ASC_MANAGER, f"#escalate attempt {minute}")
    assert h.case(ref)["stage"] == 2
    assert h.outbox(ref, "final_alert") == []
    # Nor can the raiser push past the people now acting, twice in a row.
    h.reply(ref, RAISER, "#escalate the senior managers are not answering")
    assert h.case(ref)["stage"] == 3
    h.reply(ref, RAISER, "#escalate again")
    assert h.case(ref)["stage"] == 3
    # The Stage 3 executive may; and the deadline moves it on as the policy says.
    h.reply(ref, "grace.demoley@asc.swindon.example.org", "#escalate the directors cannot agree")
    assert h.case(ref)["stage"] == 4


def test_escalate_from_an_earlier_stage_manager_is_refused_but_the_current_tier_may(h):
    ref = h.open_case()
    h.reply(ref, GWH_MANAGER, "#escalate no agreement")       # Stage 1 -> 2
    h.reply(ref, ASC_MANAGER, "#escalate push it further")    # a Stage 1 manager at Stage 2: refused
    assert h.case(ref)["stage"] == 2
    assert "Stage 2" in h.events(ref, "command_refused")[-1].detail["why"]
    h.reply(ref, ASC_SENIOR, "#escalate no agreement at Stage 2")
    assert h.case(ref)["stage"] == 3


def test_a_second_bounce_of_the_same_message_sends_no_second_notice(h_any):
    h = h_any
    ref = h.open_case()
    escalation = h.outbox(ref, "escalation")[0]
    for n in (1, 2):
        dsn = DSN.replace(b"<SSP-2026-0007.77a0c41e9b@mailflow.example>", escalation.message_id.encode()) \
                 .replace(b"<20260302102101.5C1A2@mx.ssp.example.org>", f"<dsn{n}@mx.example.org>".encode())
        h.ingest(dsn)
    [notice] = h.outbox(ref, "delivery_failure")
    assert notice.recipients == [BUSINESS]
    assert [e.action for e in h.events(ref) if e.action.startswith("bounced")] == ["bounced", "bounced_again"]
    assert [r.state for r in h.outbox(ref, "escalation")] == ["bounced"]
