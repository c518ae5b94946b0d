"""Routing an escalation: a form naming an agency the directory cannot match on strong evidence
goes to the business team with the candidates (never to a look-alike agency's manager), and
`cases assign` settles it; recipients are people (one copy per address); managers are recorded
with their side and agency; the other professional is told when the case opens."""

from __future__ import annotations

import email
import tomllib
from collections.abc import Iterator
from email.policy import default
from email.utils import getaddresses
from pathlib import Path

import pytest
from sqlalchemy import select

from mailflow.addresses import address_key
from mailflow.app import App
from mailflow.cli.main import main
from mailflow.clock import FixedClock, parse_instant
from mailflow.config import parse_config
from mailflow.db.models import Case, OutboxMessage
from mailflow.resources import bundled_dir
from tests.conftest import make_message, write_config
from tests.engine.conftest import BUSINESS, GWH_MANAGER, GWH_SENIOR, RAISER, START, Harness

DIRECTORY = """
[partnership]
business_team = ["Business Team <Business.Team@ssp.example.org>"]

[roles]
chair = ["Independent Chair (example) <chair@ssp.example.org>"]

[[agency]]
name = "Swindon Borough Council - Adult Social Care"
kind = "local_authority_adult_services"
aliases = ["SBC Adult Social Care", "Adult Social Care"]
domains = ["asc.swindon.example.org"]
[agency.contacts]
manager = ["Priya Examplewood, Team Manager <priya.examplewood@asc.swindon.example.org>"]
senior_manager = ["Tom Samplefield, Service Manager <tom.samplefield@asc.swindon.example.org>"]
executive = ["Grace Demoley, Director <grace.demoley@asc.swindon.example.org>"]

[[agency]]
name = "Great Western Hospitals NHS Foundation Trust"
kind = "nhs_provider"
aliases = ["GWH"]
domains = ["gwh.nhs.example.org"]
[agency.contacts]
manager = ["Liam Testcase, Ward Manager <liam.testcase@gwh.nhs.example.org>"]
senior_manager = ["Nadia Mockford, Named Nurse <nadia.mockford@gwh.nhs.example.org>"]
executive = ["Ruth Stubbington, Chief Nurse <ruth.stubbington@gwh.nhs.example.org>"]

[[agency]]
name = "Wiltshire Police"
kind = "police"
aliases = ["Police"]
domains = ["police.example.org"]
[agency.contacts]
manager = ["DS Ian Fakename <ian.fakename@police.example.org>"]
senior_manager = ["DI Jo Invented <jo.invented@police.example.org>"]
"""

WRONG = {"priya.examplewood@asc.swindon.example.org", "tom.samplefield@asc.swindon.example.org",
         "grace.demoley@asc.swindon.example.org", "ian.fakename@police.example.org", "jo.invented@police.example.org"}
OTHER_PRO = "sam.otherperson@wiltshire.gov.example"
PERSONAL = ("Ada", "Testperson", "1951", "Example Road", "Sam", "Otherperson")


def form(other: str, other_email: str = OTHER_PRO) -> bytes:
    body = "\n".join([
        "Case Resolution Stage 1 / 2 Pro-forma", "",
        "Name of adult: Ada Testperson",
        "DOB: 03/04/1951",
        "Address: 1 Example Road, Swindon SN1 0XX",
        "Name, Role and Agency of person completing this form: Jo Example, Ward Sister, "
        "Great Western Hospitals NHS Foundation Trust",
        f"Your email: {RAISER}",
        f"Name, Roles and Agency of others involved: Sam Otherperson, Social Worker, {other}, {other_email}",
        "Brief details of the professional disagreement: Disagreement about the discharge care package.",
    ])
    return make_message(RAISER, "Escalation form", body)


def open_routing_harness(tmp_path: Path, *, extra: str = "", policy: str = "swindon") -> tuple[Harness, Path]:
    directory = tmp_path / "directory.toml"
    directory.write_text(DIRECTORY)
    cfg = write_config(tmp_path, f"sqlite:///{tmp_path / 'routing.db'}", policy=policy, extra=extra)
    cfg.write_text(cfg.read_text().replace(str(bundled_dir("examples") / "directory.example.toml"), str(directory)))
    clock = FixedClock(parse_instant(START))
    return Harness(App.open(parse_config(tomllib.loads(cfg.read_text()), cfg), clock), clock), cfg


@pytest.fixture
def rh(tmp_path: Path) -> Iterator[tuple[Harness, Path]]:
    h, cfg = open_routing_harness(tmp_path)
    yield h, cfg
    h.app.close()


def ingest(h: Harness, raw: bytes) -> str:
    h.ingest(raw)
    with h.app.db.transaction() as s:
        return s.scalars(select(Case.reference).order_by(Case.id.desc())).first()


def headers(row: OutboxMessage) -> tuple[list[str], list[str]]:
    msg = email.message_from_bytes(row.raw, policy=default)
    to = [a.lower() for _, a in getaddresses([str(msg.get("To", ""))]) if a]
    cc = [a.lower() for _, a in getaddresses([str(msg.get("Cc", ""))]) if a]
    return to, cc


def bodies(row: OutboxMessage) -> tuple[str, str]:
    msg = email.message_from_bytes(row.raw, policy=default)
    return msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()


def participants(h: Harness, ref: str) -> dict[tuple[str, str], tuple[str, str | None, int | None]]:
    with h.app.db.transaction() as s:
        case = s.scalars(select(Case).where(Case.reference == ref)).one()
        return {(p.email.lower(), p.role): (p.side, p.agency, p.stage) for p in case.participants}


def test_a_confusable_agency_is_routed_by_hand_never_to_a_look_alike(rh: tuple[Harness, Path]) -> None:
    h, cfg = rh
    ref = ingest(h, form("Wiltshire Council Adult Social Care"))
    rows = h.outbox(ref)
    assert not any(WRONG & set(r.recipients) for r in rows), [(r.kind, r.recipients) for r in rows]

    # The raiser's own manager hears; the other side goes to the business team to route.
    [esc] = h.outbox(ref, "escalation")
    assert headers(esc) == ([GWH_MANAGER], [RAISER])
    [req] = h.outbox(ref, "routing_request")
    assert req.recipients == [BUSINESS]
    assert req.subject.startswith(f"[{ref}]") and not any(p in req.subject for p in PERSONAL)
    text, html = bodies(req)
    for body in (text, html):
        assert "Wiltshire Council Adult Social Care" in body
        assert "Swindon Borough Council - Adult Social Care: only generic words in common" in body
        assert "Wiltshire Police: shares 'wiltshire' but the names differ" in body.replace("&#39;", "'")
        assert f"mailflow cases assign {ref} other ADDRESS" in body
    [event] = h.events(ref, "needs_routing")
    assert event.detail["unmatched"] == ["Wiltshire Council Adult Social Care"] and event.detail["stage"] == 1

    # The exact command settles it: the assigned manager gets Stage 1's escalation at once.
    assigned = "lee.manager@wiltshire.gov.example"
    assert main(["--config", str(cfg), "cases", "assign", ref, "other", assigned, "--at", "2026-12-21T11:00"]) == 0
    late = h.last_sent(ref, assigned)
    assert late.kind == "escalation" and headers(late) == ([assigned], [RAISER])
    assert "Stage 1" in late.subject and late.created_at.replace(tzinfo=None) == parse_instant(
        "2026-12-21T11:00").replace(tzinfo=None)
    assert participants(h, ref)[(assigned, "manager")] == ("other", None, 1)
    assert h.ledger() == h.ledger()  # nothing fired twice by the assignment
    assert main(["--config", str(cfg), "cases", "assign", ref, "other", assigned, "--at", "2026-12-21T11:05"]) == 0
    assert len([r for r in h.outbox(ref, "escalation") if assigned in r.recipients]) == 1  # not twice

    # Stage 2: GWH's senior manager, and the other side is still asked for (nobody at that tier).
    h.run_until("2026-12-31T10:00:00")
    assert h.case(ref)["stage"] == 2
    stage2 = [r for r in h.outbox(ref, "escalation") if "Stage 2" in r.subject]
    assert [headers(r)[0] for r in stage2] == [[GWH_SENIOR]]
    assert any("Stage 2" in r.subject for r in h.outbox(ref, "routing_request"))
    assert not any(WRONG & set(r.recipients) for r in h.outbox(ref))
    # Assigned at Stage 2, the senior manager gets Stage 2's notice, as if it had been sent on time.
    senior = "kit.senior@wiltshire.gov.example"
    assert main(["--config", str(cfg), "cases", "assign", ref, "other", f"Kit Senior <{senior}>",
                 "--at", "2026-12-31T11:00"]) == 0
    late = h.last_sent(ref, senior)
    to, cc = headers(late)
    assert late.kind == "escalation" and "escalated to you" in late.subject and to == [senior]
    assert {RAISER, GWH_MANAGER, assigned} <= set(cc)
    assert participants(h, ref)[(senior, "senior_manager")] == ("other", None, 2)


def test_an_agency_named_generically_is_routed_not_guessed(rh: tuple[Harness, Path]) -> None:
    h, _ = rh
    ref = ingest(h, form("Adult Social Care", "someone@elsewhere.example"))
    assert not any(WRONG & set(r.recipients) for r in h.outbox(ref))
    [req] = h.outbox(ref, "routing_request")
    assert "'Adult Social Care' is made only of generic words" in bodies(req)[0]


def test_managers_are_recorded_with_their_side_and_agency(rh: tuple[Harness, Path]) -> None:
    h, _ = rh
    ref = ingest(h, form("SBC Adult Social Care", "sam.otherperson@asc.swindon.example.org"))
    people = participants(h, ref)
    assert people[(GWH_MANAGER, "manager")] == ("raiser", "Great Western Hospitals NHS Foundation Trust", 1)
    assert people[("priya.examplewood@asc.swindon.example.org", "manager")] == (
        "other", "Swindon Borough Council - Adult Social Care", 1)
    assert h.outbox(ref, "routing_request") == []
    [esc] = h.outbox(ref, "escalation")
    assert sorted(headers(esc)[0]) == sorted([GWH_MANAGER, "priya.examplewood@asc.swindon.example.org"])


def test_the_business_team_named_twice_gets_one_copy(rh: tuple[Harness, Path]) -> None:
    """The config names it bare, the directory as "Business Team <Business.Team@...>"."""
    h, _ = rh
    assert h.rt.config.business_team == (BUSINESS,)
    ref = ingest(h, form("Wiltshire Council Adult Social Care"))
    h.run_until("2026-12-31T10:00:00")   # Stage 2 copies the business team in (Swindon)
    to_team = [r for r in h.outbox(ref) if BUSINESS in {a.lower() for a in r.recipients}]
    assert "business_copy" in {r.kind for r in to_team}
    for row in to_team:
        assert [address_key(a) for a in row.recipients].count(BUSINESS) == 1, (row.kind, row.recipients)
        to, cc = headers(row)
        assert (to + cc).count(BUSINESS) == 1, (row.kind, to, cc)


def test_the_other_professional_is_told_once_when_the_case_opens(rh: tuple[Harness, Path]) -> None:
    h, _ = rh
    ref = ingest(h, form("SBC Adult Social Care", "sam.otherperson@asc.swindon.example.org"))
    h.run_until("2026-12-31T10:00:00")
    assert h.case(ref)["stage"] == 2
    [told] = h.outbox(ref, "other_professional_notice")
    assert told.recipients == ["sam.otherperson@asc.swindon.example.org"]
    assert told.subject == f"[{ref}] An escalation involving you has been raised"
    assert not any(p in told.subject for p in PERSONAL)
    text, html = bodies(told)
    for body in (text, html):
        assert ref in body and "Great Western Hospitals NHS Foundation Trust" in body and "Stage 1" in body


def test_telling_the_other_professional_can_be_turned_off(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    text = (bundled_dir("policies") / "swindon.toml").read_text()
    quiet = text.replace("[partnership]\n", "[partnership]\ntell_other_professional = false\n", 1)
    (policies / "swindon.toml").write_text(quiet)
    h, _ = open_routing_harness(tmp_path, extra=f'policies_dir = "{policies}"')
    try:
        assert h.rt.policy.tell_other_professional is False
        ref = ingest(h, form("SBC Adult Social Care", "sam.otherperson@asc.swindon.example.org"))
        assert h.outbox(ref, "other_professional_notice") == []
        assert h.outbox(ref, "acknowledgement")
    finally:
        h.app.close()
