"""Catch-up after downtime: when several deadlines of a case passed while the daemon was down,
one pass moves the case to where the policy puts it now (each deadline applied in order, each
claiming its ledger key) and sends one notice per recipient that says so, and one to the
business team. A deadline swept on time is unchanged."""

from __future__ import annotations

from collections import Counter

from mailflow.clock import parse_instant
from tests.engine.conftest import (
    ASC_MANAGER,
    ASC_SENIOR,
    BUSINESS,
    GWH_MANAGER,
    GWH_SENIOR,
    RAISER,
    recipients,
)

T = parse_instant
EXECUTIVES = {"grace.demoley@asc.swindon.example.org", "ruth.stubbington@gwh.nhs.example.org"}
DIRECTOR_OF_SOCIAL_WORK = "owen.fictional@asc.swindon.example.org"


def test_a_week_down_across_two_deadlines_sends_one_truthful_notice_per_recipient(h_any):
    h = h_any
    ref = h.open_case()                    # Mon 21 Dec; Stage 1 resolution due Wed 30 Dec 17:00
    h.run_until("2026-12-29T10:00:00")     # the reminder went out; then the daemon stops
    sent_before = len(h.outbox(ref))
    # Back on Fri 8 Jan: Stage 1 ran out on 30 Dec and Stage 2 on Thu 7 Jan.
    h.clock.set(T("2027-01-08T10:00:00"))
    result = h.sweep()
    assert [(f.stage, f.action) for f in result.fired] == [(1, "escalate"), (2, "escalate")]
    assert h.case(ref)["stage"] == 3 and h.case(ref)["state"] == "open"
    new = h.outbox(ref)[sent_before:]
    assert [r.kind for r in new] == ["catch_up", "catch_up"], [(r.kind, r.subject) for r in new]
    people, team = new
    everyone = [a.lower() for r in new for a in r.recipients]
    assert len(everyone) == len(set(everyone))                     # exactly one notice per recipient
    assert team.recipients == [BUSINESS]
    assert EXECUTIVES <= recipients(people)                        # Stage 3, where the case is now
    assert {ASC_SENIOR, GWH_SENIOR, ASC_MANAGER, GWH_MANAGER, RAISER, DIRECTOR_OF_SOCIAL_WORK} <= recipients(people)
    assert "Stage 3" in people.subject and "2 deadlines passed while the service was down" in people.subject
    assert "Ada" not in people.subject
    text = people.raw.decode()
    for said in ("Wednesday 30 December 2026, 5pm", "Thursday 7 January 2027, 5pm",   # what passed
                 "escalated from Stage 1 to Stage 2", "escalated from Stage 2 to Stage 3",
                 "Stage 3", "Thursday 14 January 2027, 5pm"):                        # what is due next
        assert said in text, said
    assert "For the business team" in team.raw.decode()
    # The case travels with it, as it would have with each stage's escalation and business copy.
    assert all("THE CASE" in r.raw.decode() for r in new)
    # The ledger: the reminder, then each passed deadline once, in order.
    assert Counter((st, step, kind) for _, st, step, kind in h.ledger()) == Counter(
        {(1, "resolve", "remind"): 1, (1, "resolve", "escalate"): 1, (2, "resolve", "escalate"): 1})
    [caught] = h.events(ref, "caught_up")
    assert caught.detail["from_stage"] == 1 and caught.detail["to_stage"] == 3
    assert [p["due"][:10] for p in caught.detail["passed"]] == ["2026-12-30", "2027-01-07"]
    # The same pass again, or later the same day: nothing new.
    assert h.sweep().fired == [] and len(h.outbox(ref)) == sent_before + 2
    # From here the case runs on time again: Stage 3's own escalation on Thu 14 Jan.
    h.run_until("2027-01-14T17:00:00")
    assert h.case(ref)["stage"] == 4
    assert [r.kind for r in h.outbox(ref)][-2:] == ["escalation", "business_copy"]


def test_an_escalation_on_time_is_unchanged(h_any):
    h = h_any
    ref = h.open_case()
    h.run_until("2026-12-30T17:00:00")
    assert h.case(ref)["stage"] == 2
    assert [r.kind for r in h.outbox(ref)] == ["acknowledgement", "escalation", "reminder", "escalation",
                                               "business_copy"]
    assert h.events(ref, "caught_up") == []


def test_a_single_deadline_noticed_late_is_the_usual_escalation(h):
    """One deadline passed while down: its own notice already names the deadline that passed."""
    ref = h.open_case()
    h.sweep(T("2027-01-04T10:00:00"))        # 30 Dec passed; Stage 2 not due till Thu 7 Jan
    assert h.case(ref)["stage"] == 2
    assert h.outbox(ref, "catch_up") == []
    assert "Wednesday 30 December 2026, 5pm" in h.outbox(ref, "escalation")[-1].raw.decode()


def test_down_through_the_final_alert_tells_the_chair_once(h):
    """Down from before Stage 1 ran out until after the final stage's time: one pass takes the
    case to Stage 4 and its final alert; the chair and the business team hear once each."""
    ref = h.open_case()
    h.clock.set(T("2027-02-01T10:00:00"))
    fired = h.sweep().fired
    assert [f.action for f in fired] == ["escalate", "escalate", "escalate", "final_alert"]
    assert h.case(ref)["stage"] == 4
    new = [r for r in h.outbox(ref) if r.created_at == T("2027-02-01T10:00:00")]
    assert [r.kind for r in new] == ["catch_up", "catch_up"]
    everyone = [a.lower() for r in new for a in r.recipients]
    assert len(everyone) == len(set(everyone)) and "chair@ssp.example.org" in everyone
    assert "final alert given" in new[0].raw.decode()
    assert "awaiting the chair / the Board" in new[1].raw.decode()
    # The final alert is on record once, so a later #escalate cannot give it again.
    assert len(h.events(ref, "final_alert")) == 1
