"""Agency matching takes strong evidence only: a contact's exact address, the mail domain, or the
exact (normalised) name; generic words are never evidence and a conflicting address vetoes a name.
Table tests over confusable agencies (invented ones)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mailflow.directory import Directory, normalise_name, parse_directory

CONFUSABLE = """
[partnership]
business_team = ["Business Team <Business.Team@ssp.example.org>", "business.team@ssp.example.org"]
shared_domains = ["county.gcsx.example"]

[[agency]]
name = "Swindon Borough Council - Adult Social Care"
kind = "local_authority_adult_services"
aliases = ["SBC Adult Social Care", "Adult Social Care"]
domains = ["asc.swindon.gov.example"]
[agency.contacts]
manager = ["Priya Examplewood, Team Manager <priya.examplewood@asc.swindon.gov.example>"]

[[agency]]
name = "Bath & North East Somerset Council - Adult Social Care"
kind = "local_authority_adult_services"
aliases = ["B&NES Adult Social Care"]
domains = ["bathnes.gov.example"]

[[agency]]
name = "Agency A Adult Social Care"
kind = "local_authority_adult_services"
domains = ["agency-a.example"]

[[agency]]
name = "Swindon Borough Council"
kind = "local_authority"
domains = ["swindon.gov.example"]

[[agency]]
name = "Swindon Care Homes Ltd"
kind = "care_provider"
domains = ["swindoncarehomes.example"]

[[agency]]
name = "Great Western Hospitals NHS Foundation Trust"
kind = "nhs_provider"
aliases = ["GWH"]
domains = ["gwh.nhs.example"]

[[agency]]
name = "Salisbury NHS Foundation Trust"
kind = "nhs_provider"
aliases = ["Salisbury District Hospital"]
domains = ["salisbury.nhs.example"]

[[agency]]
name = "Oxford Community Health NHS Trust"
kind = "nhs_provider"
domains = ["nhs.net"]
[agency.contacts]
manager = ["Pat Contactperson <pat.contactperson@nhs.net>"]

[[agency]]
name = "Wiltshire Police"
kind = "police"
aliases = ["Police"]
domains = ["wiltshire.police.example"]

[[agency]]
name = "Avon and Somerset Police"
kind = "police"
aliases = ["Avon & Somerset Constabulary"]
domains = ["avonandsomerset.police.example"]
"""

ASC = "Swindon Borough Council - Adult Social Care"
BANES = "Bath & North East Somerset Council - Adult Social Care"
SBC = "Swindon Borough Council"
HOMES = "Swindon Care Homes Ltd"
GWH = "Great Western Hospitals NHS Foundation Trust"
SALISBURY = "Salisbury NHS Foundation Trust"
OXFORD = "Oxford Community Health NHS Trust"
WPOL = "Wiltshire Police"
ASPOL = "Avon and Somerset Police"


@pytest.fixture(scope="module")
def directory() -> Directory:
    return parse_directory(tomllib.loads(CONFUSABLE), Path("confusable.toml"))


# (name on the form, the person's address, the agency expected or None, candidates that must be listed)
CASES = [
    # The two reported defects: a generic alias must not pull a different council's ASC in.
    ("Wiltshire Council Adult Social Care", "sam.other@wiltshire.gov.example", None, {ASC, WPOL}),
    ("Redbridge Adult Social Care", None, None, {"Agency A Adult Social Care", ASC}),
    # Two councils' adult social care.
    ("Adult Social Care", None, None, {ASC}),                        # generic words only
    ("Adult Social Care", "jo@asc.swindon.gov.example", ASC, set()),  # the address settles it
    ("Swindon Borough Council Adult Social Care", None, ASC, set()),  # punctuation ignored
    ("SWINDON BOROUGH COUNCIL \u2013 ADULT SOCIAL CARE", None, ASC, set()),
    ("Bath and North East Somerset Council Adult Social Care", None, BANES, set()),  # & = and
    ("B&NES Adult Social Care", "x@bathnes.gov.example", BANES, set()),
    ("Swindon Borough Council - Adult Social Care", "x@bathnes.gov.example", None, {ASC, BANES}),  # conflict
    ("Council", None, None, set()),
    # A care provider with a council-like name.
    ("Swindon Borough Council", None, SBC, set()),
    ("Swindon Care Homes", None, HOMES, set()),                       # "Ltd" ignored
    ("The Swindon Care Homes Limited", None, HOMES, set()),
    ("Swindon Care Homes Ltd", "manager@swindon.gov.example", None, {SBC, HOMES}),
    ("Swindon Borough Council", "manager@swindoncarehomes.example", None, {SBC, HOMES}),
    ("Swindon Council", None, None, {SBC, HOMES, ASC}),
    # Sub-domains: the most specific domain wins; a look-alike suffix is no domain at all.
    (None, "a@team.asc.swindon.gov.example", ASC, set()),
    (None, "a@housing.swindon.gov.example", SBC, set()),
    (None, "a@notswindon.gov.example", None, set()),
    (None, "Jo Example <Jo@ASC.Swindon.gov.example>", ASC, set()),
    # Two NHS trusts.
    ("Great Western Hospitals NHS Foundation Trust", "a@salisbury.nhs.example", None, {GWH, SALISBURY}),
    ("NHS Foundation Trust", None, None, set()),
    ("The Great Western Hospitals NHS Foundation Trust", None, GWH, set()),
    ("Salisbury NHS Foundation Trust", "a.nurse@nhs.net", SALISBURY, set()),  # nhs.net: no veto
    ("Great Western Hospitals NHS Foundation Trust", "someone@gmail.com", GWH, set()),
    ("GWH", "someone@county.gcsx.example", GWH, set()),              # the directory's shared domain
    (None, "pat.contactperson@nhs.net", OXFORD, set()),               # a contact's exact address
    (None, "stranger@nhs.net", None, set()),                          # nhs.net is no evidence
    ("Salisbury Hospital", None, None, {SALISBURY}),
    # A police force and its neighbour.
    ("Wiltshire Police", None, WPOL, set()),
    ("Police", None, None, {WPOL}),
    ("Avon & Somerset Constabulary", None, ASPOL, set()),
    ("Wiltshire Police", "ds@avonandsomerset.police.example", None, {WPOL, ASPOL}),
    ("Wiltshire Constabulary", None, None, {WPOL}),
    ("Wiltshire Police", "someone@elsewhere.example", None, {WPOL}),  # not at the named force's domain
]


@pytest.mark.parametrize(("name", "email", "expected", "candidates"), CASES)
def test_agency_matching_takes_strong_evidence_only(directory: Directory, name: str | None, email: str | None,
                                                    expected: str | None, candidates: set[str]) -> None:
    match = directory.match_agency(name, email)
    assert (match.agency.name if match.agency else None) == expected, match.evidence
    assert match.evidence
    listed = {c.agency.name for c in match.candidates}
    assert candidates <= listed, (listed, [c.why_not for c in match.candidates])
    if expected is not None:
        assert not match.candidates
    assert all(c.why_not for c in match.candidates)


def test_candidates_say_why_they_were_not_chosen(directory: Directory) -> None:
    match = directory.match_agency("Wiltshire Council Adult Social Care", "sam.other@wiltshire.gov.example")
    why = {c.agency.name: c.why_not for c in match.candidates}
    assert "generic" in why[ASC] and "'wiltshire'" in why[WPOL]
    conflict = directory.match_agency("Wiltshire Police", "ds@avonandsomerset.police.example")
    why = {c.agency.name: c.why_not for c in conflict.candidates}
    assert "the form names another agency" in why[ASPOL] and "not at its domains" in why[WPOL]


def test_names_are_normalised_only_in_documented_ways() -> None:
    assert normalise_name("The Bath & North-East Somerset Council, Ltd.") == "bath and north east somerset council"
    assert normalise_name("St John's Care Homes Limited") == normalise_name("ST JOHNS CARE HOMES")
    assert normalise_name("Café Trust") == "cafe trust"
    assert normalise_name("Adult Social Care Team") != normalise_name("Adult Social Care")


def test_directory_check_warns_about_generic_aliases_shared_domains_and_clashes(directory: Directory) -> None:
    problems = "\n".join(directory.problems())
    assert "'Adult Social Care' is made only of generic words" in problems
    assert "'Police' is made only of generic words" in problems
    assert "domain 'nhs.net' is shared" in problems
    clash = parse_directory(tomllib.loads(
        '[[agency]]\nname = "Riverside Trust"\naliases = ["Riverside"]\ndomains = ["a.example"]\n'
        '[[agency]]\nname = "Riverside Care"\naliases = ["RIVERSIDE"]\ndomains = ["b.example"]\n'), Path("x.toml"))
    assert "'RIVERSIDE' names both 'Riverside Trust' and 'Riverside Care'" in "\n".join(clash.problems())
    assert clash.match_agency("Riverside").agency is None
    assert {c.agency.name for c in clash.match_agency("Riverside").candidates} == {"Riverside Trust", "Riverside Care"}


def test_business_team_is_one_person_however_it_is_spelt(directory: Directory) -> None:
    assert directory.business_team == ("Business.Team@ssp.example.org",)
    again = Directory.load(None, ["bt@x.example", "Business Team <BT@X.example>"])
    assert again.business_team == ("bt@x.example",)
