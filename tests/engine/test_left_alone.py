"""A case nobody answers climbs every stage of each of the five policies, on the policy's own
timeline, telling the right people at the right instants, and ends with the final alert."""

from __future__ import annotations

import email
import re
from datetime import timedelta
from email.policy import default
from email.utils import getaddresses
from zoneinfo import ZoneInfo

import pytest

from mailflow.clock import FixedClock, parse_instant
from mailflow.core.deadlines import timeline
from mailflow.db.models import OutboxMessage
from tests.engine.conftest import BUSINESS, CHAIR, RAISER, START, open_harness

# The example directory's people for the two agencies of the standard form (GWH raises it about
# Swindon Borough Council Adult Social Care, a local authority adult services agency).
TIER = {
    "manager": {"liam.testcase@gwh.nhs.example.org", "priya.examplewood@asc.swindon.example.org"},
    "senior_manager": {"nadia.mockford@gwh.nhs.example.org", "tom.samplefield@asc.swindon.example.org"},
    "executive": {"ruth.stubbington@gwh.nhs.example.org", "grace.demoley@asc.swindon.example.org"},
    "safeguarding_lead": {"nadia.mockford@gwh.nhs.example.org", "hana.placeholder@asc.swindon.example.org"},
    "director_of_social_work": {"owen.fictional@asc.swindon.example.org"},
    "chair": {CHAIR},
    "practitioner": set(), "board": set(), "commissioning_lead": set(), "director": set(),
}
AGENCY_KINDS = {"nhs_provider", "local_authority_adult_services"}

UK = ZoneInfo("Europe/London")
POLICIES = ["swindon", "kent-medway", "shropshire", "luton", "redbridge"]


def _headers(row: OutboxMessage) -> tuple[set[str], set[str]]:
    msg = email.message_from_bytes(row.raw, policy=default)
    to = {a.lower() for _, a in getaddresses([str(msg.get("To", ""))]) if a}
    cc = {a.lower() for _, a in getaddresses([str(msg.get("Cc", ""))]) if a}
    return to, cc


def _stage_of(row: OutboxMessage) -> int:
    m = re.search(r"Stage (\d+)", row.subject)
    assert m, row.subject
    return int(m.group(1))


@pytest.mark.parametrize(("policy", "start"), [
    *[(p, START) for p in POLICIES],
    # Across Easter 2027 (Good Friday 26 Mar, Easter Monday 29 Mar) and the clock change (28 Mar).
    ("swindon", "2027-03-22T10:00:00"), ("shropshire", "2027-03-24T16:30:00"), ("redbridge", "2027-03-23T09:15:00"),
])
def test_left_alone_escalates_stage_by_stage_to_the_end(tmp_path, sqlite_url, policy, start):
    h = open_harness(tmp_path, sqlite_url, policy=policy, prefix="TST", clock=FixedClock(parse_instant(start)))
    try:
        ref = h.open_case()
        pol = h.rt.policy
        specs = timeline(pol, parse_instant(start), False)
        h.run_until(max(s.due for s in specs) + timedelta(days=30))
        rows = h.outbox(ref)
        by_kind: dict[str, list[OutboxMessage]] = {}
        for r in rows:
            by_kind.setdefault(r.kind, []).append(r)

        # When each stage started: Stage 1 at the form, each next at the previous escalating deadline.
        starts = {1: parse_instant(start)}
        for s in specs:
            if s.escalates and s.step != "final" and s.stage < pol.last_stage:
                starts[s.stage + 1] = s.due
        assert len(starts) == pol.last_stage

        # One escalation notice per stage that has someone to act, at the stage's start, to that tier.
        esc = {_stage_of(r): r for r in by_kind.get("escalation", [])}
        assert len(esc) == len(by_kind.get("escalation", [])), "an escalation notice was sent twice"
        routing = by_kind.get("routing_request", [])
        prev_people: set[str] = set()
        for n in range(1, pol.last_stage + 1):
            stage = pol.stage(n)
            people = TIER[stage.tier]
            if people:
                row = esc.pop(n)
                assert row.created_at == starts[n], (n, row.created_at, starts[n])
                to, cc = _headers(row)
                assert to == people, (n, to)
                assert RAISER in cc
                assert prev_people - people <= cc  # the previous stage's people are copied in
                assert bool(re.search(r"escalated to you", row.subject)) == (n > 1)
            else:
                assert any(_stage_of(r) == n and r.created_at == starts[n] for r in routing), \
                    f"stage {n}: nobody of tier {stage.tier}, and the business team was not asked to route it"
            prev_people = people
        assert not esc

        # The business team is copied at exactly the stages the policy says, when each starts.
        copies = sorted((_stage_of(r), r.created_at) for r in by_kind.get("business_copy", []))
        expected = sorted((n, starts[n]) for n in starts if pol.stage(n).copy_business_team)
        assert copies == expected
        for r in by_kind.get("business_copy", []):
            assert _headers(r)[0] == {BUSINESS}

        # Named roles: at the stage's start, or just before the next stage (only for their agency kind).
        notices = {(_stage_of(r), r.created_at, frozenset(_headers(r)[0])) for r in by_kind.get("role_notice", [])}
        wanted = set()
        for n in starts:
            for note in pol.stage(n).notify:
                if note.role == "business_team" or (note.only_for and note.only_for not in AGENCY_KINDS):
                    continue
                when = starts[n] if note.when == "stage_start" else starts.get(n + 1)
                if when is None:
                    continue
                if TIER[note.role]:
                    wanted.add((n, when, frozenset(TIER[note.role])))
                else:  # nobody holds the role: the business team is asked instead
                    assert any(_stage_of(r) == n and r.created_at == when for r in routing), note.role
        assert notices == wanted

        # Reminders: at the opening of the working day before each deadline, in UK time.
        dues = {s.due for s in specs if s.step != "final"}
        cal = pol.calendar
        for r in by_kind.get("reminder", []):
            if "overdue" in r.subject:   # Redbridge's non-escalating steps: told when they pass
                assert r.created_at in dues
                continue
            local = r.created_at.astimezone(UK)
            assert (local.hour, local.minute) == (9, 0), local
            assert any(cal.working_days_before(d, 1) == r.created_at for d in dues), local

        # The final alert, once, to the business team and the chair, at the final deadline.
        final = next(s for s in specs if s.step == "final")
        [alert] = by_kind["final_alert"]
        assert alert.created_at == final.due
        assert _headers(alert)[0] == {BUSINESS, CHAIR}
        c = h.case(ref)
        assert (c["state"], c["stage"]) == ("open", pol.last_stage)
        assert h.pending(ref) == []
        # Nothing more, ever: another sweep much later fires nothing.
        assert h.sweep(parse_instant("2027-06-01T10:00:00")).fired == []
        assert len(h.outbox(ref)) == len(rows)
    finally:
        h.app.close()


def test_swindon_timeline_instants_and_people_exactly(tmp_path, sqlite_url):
    """Swindon spelled out: business team from Stage 2, the Director of Social Work told before
    Stage 3 (the other agency is Local Authority Adult Services), the chair at Stage 4."""
    h = open_harness(tmp_path, sqlite_url, policy="swindon", prefix="SSP")
    try:
        ref = h.open_case()
        h.run_until("2027-02-01T10:00:00")
        got = [(r.kind, _stage_of(r), r.created_at.isoformat()) for r in h.outbox(ref) if r.kind != "reminder"]
        assert got == [
            ("acknowledgement", 1, "2026-12-21T10:00:00+00:00"),
            ("escalation", 1, "2026-12-21T10:00:00+00:00"),
            ("escalation", 2, "2026-12-30T17:00:00+00:00"),
            ("business_copy", 2, "2026-12-30T17:00:00+00:00"),
            ("role_notice", 2, "2027-01-07T17:00:00+00:00"),   # Director of Social Work, before Stage 3
            ("escalation", 3, "2027-01-07T17:00:00+00:00"),
            ("business_copy", 3, "2027-01-07T17:00:00+00:00"),
            ("escalation", 4, "2027-01-14T17:00:00+00:00"),
            ("business_copy", 4, "2027-01-14T17:00:00+00:00"),
            ("final_alert", 4, "2027-01-21T17:00:00+00:00"),
        ]
        dsw = h.outbox(ref, "role_notice")[0]
        assert dsw.recipients == ["owen.fictional@asc.swindon.example.org"]
        assert "Director of Social Work" in dsw.subject
    finally:
        h.app.close()


def test_swindon_director_of_social_work_not_told_when_no_local_authority(tmp_path, sqlite_url):
    h = open_harness(tmp_path, sqlite_url, policy="swindon", prefix="SSP")
    try:
        ref = h.open_case(other_agency="Wiltshire Police")
        h.run_until("2027-01-08T10:00:00")
        assert h.case(ref)["stage"] == 3
        assert h.outbox(ref, "role_notice") == []
        assert "owen.fictional@asc.swindon.example.org" not in {a for r in h.outbox(ref) for a in r.recipients}
    finally:
        h.app.close()


def test_escalation_says_why_in_words(tmp_path, sqlite_url):
    h = open_harness(tmp_path, sqlite_url, policy="swindon", prefix="SSP")
    try:
        ref = h.open_case()
        h.run_until("2026-12-31T10:00:00")
        row = [r for r in h.outbox(ref, "escalation") if "Stage 2" in r.subject][0]
        body = email.message_from_bytes(row.raw, policy=default).get_body(("plain",)).get_content()
        assert "the Stage 1 resolve deadline (Wednesday 30 December 2026, 5pm) passed without a resolution" in body
        assert "+00:00" not in body
        [event] = h.events(ref, "escalated")
        assert event.detail["automatic"] is True and event.detail["to_stage"] == 2
    finally:
        h.app.close()


def test_redbridge_raise_step_is_met_by_the_form(tmp_path, sqlite_url):
    """The form is the raising: nobody is told "raise overdue"; the respond step still is."""
    h = open_harness(tmp_path, sqlite_url, policy="redbridge", prefix="RSAB")
    try:
        ref = h.open_case()
        assert [(s, step, a) for s, step, a, _ in h.pending(ref)] == [
            (1, "respond", "remind"), (1, "respond", "overdue"), (1, "resolve", "remind"), (1, "resolve", "escalate")]
        h.run_until("2026-12-30T12:00:00")
        subjects = [r.subject for r in h.outbox(ref, "reminder")]
        assert not any("raise" in s for s in subjects)
        assert any("respond overdue since Thu 24 Dec" in s for s in subjects)
    finally:
        h.app.close()
