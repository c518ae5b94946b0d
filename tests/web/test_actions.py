"""Actions from the case page call the CLI's functions and are recorded with the person's name."""

from __future__ import annotations

from tests.engine.conftest import Harness
from tests.web.conftest import Console

TEAM = "jo.officer@ssp.example.org"


def test_note_resolve_and_reopen_are_recorded_with_the_signed_in_person(console: Console, harness: Harness) -> None:
    ref = harness.open_case()
    console.add_user(TEAM, "team", name="Jo Officer")
    c = console.sign_in(TEAM)
    page = f"/cases/{ref}"
    r = console.post(c, f"/cases/{ref}/note", {"text": "Rang the ward; discharge on hold."}, page)
    assert r.status_code == 303
    r = console.post(c, f"/cases/{ref}/resolve", {"text": "Joint visit agreed."}, page)
    assert r.status_code == 303 and harness.case(ref)["state"] == "resolved"
    assert "resolve recorded" in c.get(page).text
    actors = {(e.action, e.actor) for e in harness.events(ref)}
    named = f"web:Jo Officer <{TEAM}>"
    assert ("note", named) in actors and ("resolved", named) in actors
    assert harness.outbox(ref, kind="confirmation_request"), "resolving asks for written confirmation"
    r = console.post(c, f"/cases/{ref}/reopen", {"text": "Visit did not happen."}, page)
    assert harness.case(ref)["state"] == "open"
    assert [e.actor for e in harness.events(ref, "reopened")] == [named]


def test_escalate_extend_and_assign_use_the_pipeline(console: Console, harness: Harness) -> None:
    ref = harness.open_case()
    console.add_user(TEAM, "team")
    c = console.sign_in(TEAM)
    page = f"/cases/{ref}"
    before = harness.pending(ref)
    console.post(c, f"/cases/{ref}/extend", {"days": "2", "text": "Manager on leave"}, page)
    after = harness.pending(ref)
    assert after != before and [e.detail["days"] for e in harness.events(ref, "extended")] == [2]
    r = console.post(c, f"/cases/{ref}/extend", {"days": "99", "text": "too many"}, page)
    assert r.status_code == 303 and "Not done" in c.get(page).text
    assert len(harness.events(ref, "extended")) == 1
    console.post(c, f"/cases/{ref}/escalate", {"text": "No progress at Stage 1."}, page)
    assert harness.case(ref)["stage"] == 2
    assert [e.actor for e in harness.events(ref, "escalated")] == [f"web:{TEAM}"]   # an account without a name
    console.post(c, f"/cases/{ref}/assign", {"side": "other", "email": "new.manager@asc.swindon.example.org"}, page)
    assert "new.manager@asc.swindon.example.org" in harness.case(ref)["participants"]


def test_an_action_the_state_machine_refuses_changes_nothing(console: Console, harness: Harness) -> None:
    ref = harness.open_case()
    console.add_user(TEAM, "team")
    c = console.sign_in(TEAM)
    r = console.post(c, f"/cases/{ref}/reopen", {"text": "not closed"}, f"/cases/{ref}")
    assert r.status_code == 303 and "Not done" in c.get(f"/cases/{ref}").text
    assert harness.case(ref)["state"] == "open" and harness.events(ref, "reopened") == []
