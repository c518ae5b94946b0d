"""Nothing stalls unseen: a case nobody can be reached for is held at its stage and the routing
request repeated at each deadline; a resolution never confirmed in writing is chased once more
and handed to the business team; a case past its final alert awaits the chair / the Board. The
digest's "needs a person" section lists every stalled case, whatever its age, by reference."""

from __future__ import annotations

from sqlalchemy import select

from mailflow.clock import parse_instant
from mailflow.db.models import Case
from mailflow.pipeline import cases
from mailflow.pipeline.digest import render_digests
from tests.conftest import make_form
from tests.engine.conftest import ASC_MANAGER, BUSINESS, RAISER, Harness, open_harness

T = parse_instant
OUTSIDER = "kim.volunteer@charity.example.net"


def _needs_a_person(h: Harness, at: str) -> str:
    digest = render_digests(h.app, T(at))[0]
    text = digest.text
    section = text[text.index("Needs a person"):text.index("Events to check")]
    assert "Ada" not in text and "Testperson" not in text and "Ada" not in digest.html
    return section


def _unroutable_case(h: Harness) -> str:
    form = make_form(OUTSIDER, other_agency="Riverside Befriending Charity").replace(
        b"Great Western Hospitals NHS Foundation Trust", b"Hilltop Community Lunch Club")
    h.ingest(form)   # neither agency is in the directory: nobody at Stage 1, nor at Stage 2
    with h.app.db.transaction() as s:
        return s.scalars(select(Case.reference).order_by(Case.id.desc())).first()


def test_nobody_to_route_to_is_held_asked_again_at_each_deadline_and_listed(h_any):
    h = h_any
    ref = _unroutable_case(h)
    assert len(h.outbox(ref, "routing_request")) == 1
    assert "nobody to route to" in _needs_a_person(h, "2026-12-22T08:00:00")
    # Three deadlines pass over six weeks: the case stays at Stage 1 and the business team is
    # asked again at each one, instead of the case marching on to stages nobody reaches either.
    h.run_until("2027-01-20T18:00:00")
    assert h.case(ref)["stage"] == 1 and h.case(ref)["state"] == "open"
    held = h.events(ref, "held")
    assert len(held) == 3 and all("held at Stage 1" in e.detail["why"] for e in held)
    requests = h.outbox(ref, "routing_request")
    assert len(requests) == 1 + 3 and all(r.recipients == [BUSINESS] for r in requests)
    assert h.outbox(ref, "escalation") == []
    assert [d[2] for d in h.pending(ref)] == ["escalate"]   # the next try
    section = _needs_a_person(h, "2027-01-21T08:00:00")     # weeks old, still listed
    assert f"{ref}  Stage 1: nobody to route to" in section
    # Someone is assigned: the case leaves the list and moves on at its next deadline.
    with h.app.db.transaction() as s:
        case = s.scalars(select(Case).where(Case.reference == ref)).one()
        cases.assign(s, h.rt, case, cases.Actor("cli:business"), h.clock.now(), "other", ASC_MANAGER)
    # The case is no longer held; the raiser's own agency still has nobody, so it stays listed for that.
    section = _needs_a_person(h, "2027-01-21T08:00:00")
    assert f"{ref}  Stage 1: nobody to route to" not in section
    assert f"{ref}  Stage 1: an agency with nobody to route to" in section
    h.run_until("2027-01-22T10:00:00")          # the next try, Thu 21 Jan: Stage 2 is reachable now
    assert h.case(ref)["stage"] == 2
    assert h.events(ref, "escalated")[-1].detail["to_stage"] == 2


def test_unconfirmed_resolution_is_chased_once_more_then_handed_to_the_business_team(h_any):
    h = h_any
    ref = h.open_case()
    h.reply(ref, ASC_MANAGER, "#resolved agreed a joint discharge plan")   # confirmation due Wed 30 Dec
    h.run_until("2027-01-07T16:00:00")
    assert len(h.outbox(ref, "confirmation_request")) == 2                # the request and one chase
    assert h.events(ref, "confirmation_handed_over") == []
    h.run_until("2027-01-07T17:00:00")                                     # 5 working days after the chase
    [handed] = [r for r in h.outbox(ref, "case_update") if "handed to the business team" in r.subject]
    assert handed.recipients == [BUSINESS] and handed.created_at == T("2027-01-07T17:00:00")
    assert h.case(ref)["state"] == "resolved"
    assert f"{ref}  Stage 1: awaiting written confirmation — handed to the business team" in \
        _needs_a_person(h, "2027-02-15T08:00:00")
    h.run_until("2027-03-01T10:00:00")                                     # nothing more is sent
    assert len(h.outbox(ref, "confirmation_request")) == 2 and len(h.events(ref, "confirmation_handed_over")) == 1
    h.reply(ref, RAISER, "#confirmed")                                     # late, but it still closes
    assert h.case(ref)["state"] == "closed"
    assert ref not in _needs_a_person(h, "2027-03-02T08:00:00")


def test_case_after_its_final_alert_awaits_the_chair_in_every_digest(tmp_path, db_url):
    h = open_harness(tmp_path, db_url)
    try:
        ref = h.open_case()
        h.run_until("2027-01-21T17:00:00")       # Stage 4 ran out: the final alert
        assert len(h.outbox(ref, "final_alert")) == 1
        for at in ("2027-01-22T08:00:00", "2027-02-22T08:00:00", "2027-06-01T08:00:00"):
            assert f"{ref}  Stage 4: awaiting the chair / the Board" in _needs_a_person(h, at)
        h.reply(ref, "chair@ssp.example.org", "#resolved the panel agreed the plan")
        assert ref not in _needs_a_person(h, "2027-06-02T08:00:00")
    finally:
        h.app.close()


def test_a_case_reaching_one_side_only_is_listed_until_the_other_is_assigned(h_any):
    """The raiser's agency is reached, so the case is not held; but the other agency (not in the
    directory) has nobody: the digest lists it under "needs a person" until someone is assigned,
    at this stage and again at the next one if that stage's tier is missing for it too."""
    h = h_any
    h.ingest(make_form(RAISER, other_agency="Wiltshire Council Adult Social Care"))
    with h.app.db.transaction() as s:
        ref = s.scalars(select(Case.reference).order_by(Case.id.desc())).first()
    assert h.outbox(ref, "escalation") and h.outbox(ref, "routing_request")
    section = _needs_a_person(h, "2026-12-22T08:00:00")
    assert f"{ref}  Stage 1: an agency with nobody to route to" in section
    with h.app.db.transaction() as s:
        case = s.scalars(select(Case).where(Case.reference == ref)).one()
        cases.assign(s, h.rt, case, cases.Actor("cli:business"), h.clock.now(), "other",
                     "lee.manager@wiltshire.gov.example")
    assert ref not in _needs_a_person(h, "2026-12-22T08:00:00")
    h.run_until("2026-12-31T10:00:00")   # Stage 1 runs out: Stage 2's tier is missing for that side again
    assert h.case(ref)["stage"] == 2
    assert f"{ref}  Stage 2: an agency with nobody to route to" in _needs_a_person(h, "2026-12-31T10:00:00")
