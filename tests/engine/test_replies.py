"""Cases moved by the people on them: resolved and confirmed, late confirmation chased, escalated
early, extended (within and beyond the limit), made urgent."""

from __future__ import annotations

import pytest

from mailflow.clock import parse_instant
from mailflow.core.deadlines import stage_deadlines, timeline
from mailflow.sources.base import Outcome
from tests.engine.conftest import (
    ASC_MANAGER,
    ASC_SENIOR,
    BUSINESS,
    GWH_MANAGER,
    RAISER,
    START,
    open_harness,
    recipients,
)

T = parse_instant


def _at_stage_2(h) -> str:
    ref = h.open_case()
    h.run_until("2026-12-31T10:00:00")   # Stage 1's 5 working days ran out on Wed 30 Dec 17:00
    assert h.case(ref)["stage"] == 2
    return ref


def test_resolved_at_stage_2_and_confirmed_closes(h_any):
    h = h_any
    ref = _at_stage_2(h)
    outcome, reason = h.reply(ref, ASC_SENIOR, "#resolved agreed: reablement package from Monday")
    assert outcome == Outcome.PROCESSED and reason is None
    assert h.case(ref)["state"] == "resolved"
    [req] = h.outbox(ref, "confirmation_request")
    assert {RAISER, ASC_SENIOR, BUSINESS} <= recipients(req)   # Stage 2 copies the business team
    # Written confirmation due 5 working days after the resolution (31 Dec -> 8 Jan, 1 Jan a holiday).
    assert [(s, step, a) for s, step, a, _ in h.pending(ref)] == [(2, "confirm", "remind"), (2, "confirm", "chase")]
    assert h.pending(ref)[-1][3] == T("2027-01-08T17:00:00")
    h.clock.set(T("2027-01-04T11:00:00"))
    h.reply(ref, RAISER, "#confirmed thank you, outcome agreed in writing")
    c = h.case(ref)
    assert (c["state"], c["stage"]) == ("closed", 2)
    assert h.pending(ref) == []
    [receipt] = h.outbox(ref, "confirmation_receipt")
    assert BUSINESS in recipients(receipt) and RAISER in recipients(receipt)
    # Nothing fires afterwards: no chaser, no escalation.
    before = len(h.outbox(ref))
    h.run_until("2027-03-01T10:00:00")
    assert len(h.outbox(ref)) == before
    assert h.case(ref)["state"] == "closed"


def test_late_confirmation_is_chased_exactly_once(h):
    ref = _at_stage_2(h)
    h.reply(ref, ASC_SENIOR, "#resolved agreed: reablement package")
    h.run_until("2027-01-08T16:59:00")
    assert [r.kind for r in h.outbox(ref, "confirmation_request")] == ["confirmation_request"]
    h.run_until("2027-01-20T10:00:00")
    requests = h.outbox(ref, "confirmation_request")
    assert len(requests) == 2
    chase = requests[1]
    assert chase.created_at == T("2027-01-08T17:00:00")
    assert {RAISER, ASC_SENIOR, BUSINESS} <= recipients(chase)
    assert len(h.events(ref, "note")) == 1   # "written confirmation is late: chased"
    for _ in range(2):   # a re-run, then much later: still one chaser
        assert h.sweep(T("2027-02-20T10:00:00")).fired == []
    assert len(h.outbox(ref, "confirmation_request")) == 2
    assert h.case(ref)["state"] == "resolved"   # late, not escalated
    h.reply(ref, RAISER, "#confirmed sorry for the delay")
    assert h.case(ref)["state"] == "closed"


def test_escalate_early_starts_the_next_stage_clock_when_the_reply_was_received(h_any):
    h = h_any
    ref = h.open_case()
    received = T("2026-12-23T11:30:00")
    h.clock.set(received)
    h.reply(ref, ASC_MANAGER, "#escalate we cannot agree the discharge plan")
    c = h.case(ref)
    assert (c["state"], c["stage"], c["stage_started_at"]) == ("open", 2, received)
    expected = stage_deadlines(h.rt.policy, 2, received, T(START), False)
    due = [d for d in h.pending(ref) if d[2] != "remind"]
    assert due == [(2, "resolve", "escalate", expected[0].due)]
    # 5 working days from Wed 23 Dec 11:30: 24, 29, 30, 31 Dec, 4 Jan (25-28 Dec and 1 Jan closed).
    assert expected[0].due == T("2027-01-04T17:00:00")
    [esc2] = [r for r in h.outbox(ref, "escalation") if "Stage 2" in r.subject]
    assert esc2.created_at == received and "escalated to you" in esc2.subject
    assert h.outbox(ref, "business_copy")[0].created_at == received
    # Stage 1's old deadline (30 Dec) does nothing now.
    h.run_until("2027-01-04T16:00:00")
    assert h.case(ref)["stage"] == 2
    h.run_until("2027-01-04T17:00:00")
    assert h.case(ref)["stage"] == 3


def test_extend_within_the_maximum_moves_the_deadline(h):
    ref = h.open_case()
    h.clock.set(T("2026-12-22T14:00:00"))
    h.reply(ref, GWH_MANAGER, "#extend 3 awaiting the GP's records")
    due = [d for d in h.pending(ref) if d[2] != "remind"]
    # 30 Dec 17:00 + 3 working days = 31 Dec, 4 Jan, 5 Jan (1 Jan a bank holiday).
    assert due == [(1, "resolve", "escalate", T("2027-01-05T17:00:00"))]
    reminders = [d for d in h.pending(ref) if d[2] == "remind"]
    assert reminders == [(1, "resolve", "remind", T("2027-01-04T09:00:00"))]
    [update] = h.outbox(ref, "case_update")
    assert "extended by 3 working day(s)" in update.raw.decode(errors="replace") or "extended" in update.subject
    assert BUSINESS in recipients(update)
    assert h.events(ref, "extended")[0].detail["days"] == 3
    h.run_until("2027-01-05T16:00:00")
    assert h.case(ref)["stage"] == 1
    h.run_until("2027-01-05T17:00:00")
    assert h.case(ref)["stage"] == 2


def test_extend_beyond_the_maximum_is_refused_and_says_so(h):
    ref = h.open_case()
    before = h.snapshot(ref)
    h.reply(ref, GWH_MANAGER, "#extend 6 awaiting records")
    assert h.snapshot(ref) == before
    [refusal] = h.outbox(ref, "case_update")
    assert refusal.recipients == [GWH_MANAGER]
    body = refusal.raw.decode(errors="replace")
    assert "at most 5" in body and "No change" in body
    assert h.events(ref, "extension_refused")[0].detail["asked"] == 6
    # Within the limit, then a second request past what is left is refused too.
    h.reply(ref, GWH_MANAGER, "#extend 4 awaiting records")
    moved = h.snapshot(ref)
    assert moved != before
    h.reply(ref, GWH_MANAGER, "#extend 2 still waiting")
    assert h.snapshot(ref) == moved
    assert "4 already granted" in h.outbox(ref, "case_update")[-1].raw.decode(errors="replace")


def test_extend_without_a_number_is_refused(h):
    ref = h.open_case()
    before = h.snapshot(ref)
    h.reply(ref, GWH_MANAGER, "#extend awaiting records")
    assert h.snapshot(ref) == before
    assert h.outbox(ref, "case_update")[-1].recipients == [GWH_MANAGER]


def test_urgent_reply_applies_the_urgent_timescales(h_any):
    h = h_any
    ref = h.open_case()
    h.reply(ref, ASC_MANAGER, "#urgent the adult was readmitted last night")
    c = h.case(ref)
    assert c["urgent"] is True and c["stage"] == 1
    # Swindon's urgent Stage 1 timescale: 1 working day from the stage's start (Mon 21 Dec 10:00).
    assert [d for d in h.pending(ref) if d[2] != "remind"] == [(1, "resolve", "escalate", T("2026-12-22T17:00:00"))]
    assert BUSINESS in recipients(h.outbox(ref, "case_update")[0])
    h.run_until("2026-12-22T17:00:00")
    assert h.case(ref)["stage"] == 2
    # Stage 2 urgent too: one working day from 22 Dec 17:00 is 23 Dec 17:00.
    assert [d for d in h.pending(ref) if d[2] != "remind"] == [(2, "resolve", "escalate", T("2026-12-23T17:00:00"))]


@pytest.mark.parametrize("policy", ["swindon", "shropshire", "redbridge"])
def test_urgent_form_follows_the_urgent_timeline(tmp_path, sqlite_url, policy):
    h = open_harness(tmp_path, sqlite_url, policy=policy, prefix="TST")
    try:
        ref = h.open_case(at_risk=True)
        assert h.case(ref)["urgent"] is True
        specs = timeline(h.rt.policy, T(START), True)
        h.run_until(T("2027-03-01T10:00:00"))
        escalations = sorted(r.created_at for r in h.outbox(ref) if r.kind in ("escalation", "routing_request")
                             and "Stage 1" not in r.subject)
        wanted = [s.due for s in specs if s.escalates and s.step != "final" and s.stage < h.rt.policy.last_stage]
        assert sorted(set(escalations)) == wanted
        [alert] = h.outbox(ref, "final_alert")
        assert alert.created_at == next(s.due for s in specs if s.step == "final")
    finally:
        h.app.close()


def test_reply_by_signed_token_is_trusted(h):
    ref = h.open_case()
    h.reply(ref, ASC_MANAGER, "#resolved agreed", how="token")
    assert h.case(ref)["state"] == "resolved"


def test_confirmed_before_any_resolution_is_refused_and_says_so(h):
    ref = h.open_case()
    before = h.snapshot(ref)
    h.reply(ref, ASC_MANAGER, "#confirmed")
    assert h.snapshot(ref) == before
    [refusal] = h.outbox(ref, "case_update")
    assert refusal.recipients == [ASC_MANAGER] and "#confirmed not applied" in refusal.subject
    assert "cannot be confirmed" in h.events(ref, "command_refused")[0].detail["why"]


def test_withdrawn_case_fires_nothing_more(h):
    ref = h.open_case()
    h.reply(ref, RAISER, "#withdraw resolved informally on the ward")
    assert h.case(ref)["state"] == "withdrawn" and h.pending(ref) == []
    assert BUSINESS in recipients(h.outbox(ref, "case_update")[0])
    count = len(h.outbox(ref))
    h.run_until("2027-03-01T10:00:00")
    assert len(h.outbox(ref)) == count


def test_director_of_social_work_told_before_a_manual_escalation_to_stage_3(h):
    ref = _at_stage_2(h)
    h.clock.set(T("2027-01-04T15:00:00"))
    h.reply(ref, ASC_SENIOR, "#escalate no agreement on the section 42 enquiry")
    assert h.case(ref)["stage"] == 3
    kinds = [(r.kind, r.subject.split(":")[0]) for r in h.outbox(ref) if r.created_at == T("2027-01-04T15:00:00")]
    assert kinds[0] == ("role_notice", f"[{ref}] Stage 2")
    assert ("escalation", f"[{ref}] Stage 3") in kinds and ("business_copy", f"[{ref}] Stage 3") in kinds
    assert h.outbox(ref, "role_notice")[0].recipients == ["owen.fictional@asc.swindon.example.org"]


def test_urgent_late_in_a_stage_escalates_once_not_through_every_stage(h):
    """Marked urgent on day 8 of Stage 1: the urgent timescale (1 working day from the stage's
    start) has run out, so the case moves to Stage 2 now, and Stage 2's urgent clock starts then:
    it does not tumble through Stages 2-4 on deadlines that were over before anyone asked."""
    ref = h.open_case()
    h.clock.set(T("2026-12-31T10:00:00"))
    h.reply(ref, ASC_MANAGER, "#urgent the adult was readmitted last night")
    assert [d for d in h.pending(ref) if d[2] != "remind"] == [(1, "resolve", "escalate", T("2026-12-31T10:00:00"))]
    h.clock.set(T("2026-12-31T10:01:00"))
    result = h.sweep()
    assert [(f.stage, f.action) for f in result.fired] == [(1, "escalate")]
    c = h.case(ref)
    assert (c["stage"], c["stage_started_at"]) == (2, T("2026-12-31T10:00:00"))
    # One working day from Thu 31 Dec 10:00 (1 Jan a bank holiday): Mon 4 Jan 17:00.
    assert [d for d in h.pending(ref) if d[2] != "remind"] == [(2, "resolve", "escalate", T("2027-01-04T17:00:00"))]


def test_shropshire_extension_does_not_make_later_stages_start_out_of_time(tmp_path, sqlite_url):
    """Shropshire counts every stage from the case start (2 / 4 / 5 / 7 / 9 working days). Stage 1
    extended by 5 days ends on Mon 4 Jan, after Stage 2's and 3's own deadlines from the case
    start: Stage 2 still gets its 2 working days from when it started, and the case moves one
    stage at a time."""
    h = open_harness(tmp_path, sqlite_url, policy="shropshire", prefix="SSCP")
    try:
        ref = h.open_case()
        h.clock.set(T("2026-12-22T10:00:00"))
        h.reply(ref, RAISER, "#extend 5 awaiting the ward's records")   # 23 Dec -> Mon 4 Jan 17:00
        assert [d for d in h.pending(ref) if d[2] != "remind"] == [(1, "resolve", "escalate", T("2027-01-04T17:00:00"))]
        h.clock.set(T("2027-01-04T17:00:00"))
        result = h.sweep()
        assert [(f.stage, f.action) for f in result.fired] == [(1, "escalate")]
        assert h.case(ref)["stage"] == 2
        # Stage 2: 4 - 2 = 2 working days from Mon 4 Jan 17:00 -> Wed 6 Jan 17:00.
        assert [d for d in h.pending(ref) if d[2] != "remind"] == [(2, "resolve", "escalate", T("2027-01-06T17:00:00"))]
        h.run_until("2027-01-06T17:00:00")
        assert h.case(ref)["stage"] == 3
    finally:
        h.app.close()
