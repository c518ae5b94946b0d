"""Form labels are read whatever the wording: every wording of the five seed policies, in plain
text, an HTML table and a .docx, common variants and typos; labels of different fields are never
confused and a label never swallows the next one. Everyone here is invented."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import pytest

from parsers import parse_message
from parsers.attachments import docx_text
from parsers.htmltext import html_to_text
from parsers.labels import FUZZY_CUTOFF, LabelIndex
from parsers.model import ParseLimits
from parsers.proforma import CANONICAL, Extraction, extract_best, load_catalogue
from tests.fixtures.mail.make_corpus import (
    SUMMARY,
    SWINDON_12,
    SWINDON_12_FIELDS,
    html_table,
    make_docx,
    outlook_html,
)

SUMMARY_TEXT = "The nursing team declined a joint visit after three falls."
PERSON = {"name": "Carl Example", "role": "District Nurse",
          "agency": "Example Community NHS Trust", "email": None}
# What is written under a label of each canonical field, and what must be read.
SAMPLE: dict[str, tuple[str, dict[str, Any]]] = {
    "adult_name": ("Bertie Testperson", {"adult_name": "Bertie Testperson"}),
    "adult_dob": ("03/04/1951", {"adult_dob": "1951-04-03"}),
    "adult_address": ("1 Example Road, Swindon SN1 1AA",
                      {"adult_address": "1 Example Road, Swindon SN1 1AA"}),
    "adult_identifier": ("999 000 0001", {"adult_identifier": "999 000 0001"}),
    "raiser_name": ("Ada Testperson", {"raiser_name": "Ada Testperson"}),
    "raiser_role": ("Social Worker", {"raiser_role": "Social Worker"}),
    "raiser_agency": ("Swindon Borough Council", {"raiser_agency": "Swindon Borough Council"}),
    "raiser_email": ("ada.testperson@swindon.example.gov.uk",
                     {"raiser_email": "ada.testperson@swindon.example.gov.uk"}),
    "others_involved.name": ("Hana Fictional", {"others_involved.name": "Hana Fictional"}),
    "others_involved.role": ("Care Coordinator", {"others_involved.role": "Care Coordinator"}),
    "others_involved.agency": ("Example Home Care Ltd",
                               {"others_involved.agency": "Example Home Care Ltd"}),
    "others_involved.email": ("hana.fictional@care.example.org",
                              {"others_involved.email": "hana.fictional@care.example.org"}),
    "others_involved": ("Carl Example, District Nurse, Example Community NHS Trust",
                        {"others_involved": [PERSON]}),
    "disagreement_summary": (SUMMARY_TEXT, {"disagreement_summary": SUMMARY_TEXT}),
    "category": ("Information sharing", {"category": "Information sharing"}),
    "stage": ("2", {"stage": 2}),
    "date_raised": ("2 March 2026", {"date_raised": "2026-03-02"}),
    "adult_at_risk": ("Yes ☒ No ☐", {"adult_at_risk": True}),
    "resolved": ("Yes ☐ No ☒", {"resolved": False}),
    "agreed_outcome": ("Joint visit on Thursday.", {"agreed_outcome": "Joint visit on Thursday."}),
    "reason_unresolved": ("No agreement yet.", {"reason_unresolved": "No agreement yet."}),
    "learning_agency": ("Earlier joint planning.", {"learning_agency": "Earlier joint planning."}),
    "learning_partnership": ("Falls pathway awareness.",
                             {"learning_partnership": "Falls pathway awareness."}),
    "training_needed": ("Yes ☒ No ☐", {"training_needed": True}),
    "new_protocol": ("Yes ☐ No ☒", {"new_protocol": False}),
    "subgroup_discussion": ("Yes ☒ No ☐", {"subgroup_discussion": True}),
}

# Every label wording of the seed policies (../shared/seeds): Swindon (000) prints three
# pro-formas; Kent and Medway (001), Shropshire (002), Luton (003) and Redbridge (004) name what the
# written record holds. (seed, wording, canonical field or "extra.<name>", written value or None
# for the field's sample, what must be read or None for the sample's).
SEED_WORDINGS: list[tuple[str, str, str, str | None, dict[str, Any] | None]] = [
    ("swindon stage 1/2", "Name of adult:", "adult_name", None, None),
    ("swindon stage 1/2", "DOB:", "adult_dob", None, None),
    ("swindon stage 1/2", "Address:", "adult_address", None, None),
    ("swindon stage 1/2", "Name, Role and Agency of person completing this form:", "raiser",
     "Ada Testperson, Social Worker, Swindon Borough Council",
     {"raiser_name": "Ada Testperson", "raiser_role": "Social Worker",
      "raiser_agency": "Swindon Borough Council"}),
    ("swindon stage 1/2", "Name, Roles and Agency of others involved:", "others_involved",
     None, None),
    ("swindon stage 1/2", "Brief details of the professional disagreement:",
     "disagreement_summary", None, None),
    ("swindon stage 1/2", "Has the disagreement been resolved at Stage 1 or 2", "resolved",
     None, None),
    ("swindon stage 1/2", "If yes, what was agreed?", "agreed_outcome", None, None),
    ("swindon stage 1/2", "How long did it take for the issue to be resolved from the date of "
     "initial case resolution?", "extra.time_to_resolve", "Nine working days",
     {"extra.time_to_resolve": "Nine working days"}),
    ("swindon stage 1/2", "If not, please state why and who has them case resolution been raised"
     " to as Stage 2 or 3 of the pathway and what was the date the concern was raised.",
     "reason_unresolved", None, None),
    ("swindon stage 1/2", "What is the learning for your agencies from this case?",
     "learning_agency", None, None),
    ("swindon stage 1/2", "Is there learning for the wider safeguarding partnership?",
     "learning_partnership", None, None),
    ("swindon stage 1/2", "A requirement for staff training", "training_needed", None, None),
    ("swindon stage 1/2", "Development of a new SSP Protocol", "new_protocol", None, None),
    ("swindon stage 1/2", "Further discussion at a particular SSP Sub Group",
     "subgroup_discussion", None, None),
    ("swindon appendix 1", "Agency:", "raiser_agency", None, None),
    ("swindon appendix 1", "Case Number", "adult_identifier", None, None),
    ("swindon appendix 1", "Unique Identifier:", "adult_identifier", None, None),
    ("swindon appendix 1", "Summary of Professional Difference", "disagreement_summary",
     None, None),
    ("swindon appendix 1", "Outcome of Resolution", "agreed_outcome", None, None),
    ("swindon appendix 2", "Name of adult at risk:", "adult_name", None, None),
    ("swindon appendix 2", "D.O.B:", "adult_dob", None, None),
    ("swindon appendix 2", "Name of Professional and email contact details of the person "
     "raising a concern", "raiser", "Dana Sample, dana.sample@police.example",
     {"raiser_name": "Dana Sample", "raiser_email": "dana.sample@police.example"}),
    ("swindon appendix 2", "Role and Agency:", "raiser", "Detective Sergeant, Example Police",
     {"raiser_role": "Detective Sergeant", "raiser_agency": "Example Police"}),
    ("swindon appendix 2", "Name(s) of other professionals involved: (Including SSP Board "
     "Members where appropriate) Role and Agency:", "others_involved", None, None),
    ("swindon appendix 2", "Brief details of professional difference (including agreed "
     "outcomes)", "disagreement_summary", None, None),
    ("swindon appendix 2", "Date of discussion/ Meeting re difference:",
     "extra.date_of_discussion", "10/03/2026", {"extra.date_of_discussion": "10/03/2026"}),
    ("swindon appendix 2", "Difference resolved at: Level Date", "extra.resolved_at",
     "Stage 2 12/03/2026", {"extra.resolved_at": "Stage 2 12/03/2026"}),
    ("swindon appendix 2", "Please indicate lessons learned from the resolution process (e.g. "
     "Individual agency review of procedure, requirement for staff training, understanding of "
     "agency referral criteria/thresholds of need);", "learning_agency", None, None),
    ("swindon appendix 2", "Please identify any further actions taken by your agency following "
     "the resolution of this issue:", "extra.further_actions", "Falls training booked.",
     {"extra.further_actions": "Falls training booked."}),
    ("swindon appendix 2", "Date:", "date_raised", None, None),
    ("swindon appendix 2", "Date received by SSP Manager:", "extra.date_received_by_ssp",
     "13/03/2026", {"extra.date_received_by_ssp": "13/03/2026"}),
    ("swindon appendix 2", "Issues referred to SSP Chair / Outcome:", "extra.chair_outcome",
     "Not referred", {"extra.chair_outcome": "Not referred"}),
    ("kent and medway", "Practitioner disagreement", "disagreement_summary", None, None),
    ("kent and medway", "Details of practitioner disagreement", "disagreement_summary", None,
     None),
    ("kent and medway", "Summary of practitioner differences", "disagreement_summary", None,
     None),
    ("kent and medway", "Date disagreement notified", "date_raised", None, None),
    ("kent and medway", "Stage of the safeguarding process", "category", None, None),
    ("kent and medway", "Stage of the escalation process", "stage", None, None),
    ("shropshire", "Disagreement between professionals", "disagreement_summary", None, None),
    ("shropshire", "Professional differences of opinion", "disagreement_summary", None, None),
    ("shropshire", "Decision reached", "agreed_outcome", None, None),
    ("shropshire", "Is someone at risk of harm?", "adult_at_risk", None, None),
    ("luton", "Professionals involved", "others_involved", None, None),
    ("luton", "Details of the dispute", "disagreement_summary", None, None),
    ("luton", "Nature of the dispute", "disagreement_summary", None, None),
    ("luton", "Agreed outcome", "agreed_outcome", None, None),
    ("redbridge", "Nature of the disagreement", "disagreement_summary", None, None),
    ("redbridge", "Issue you are concerned about", "disagreement_summary", None, None),
    ("redbridge", "Concern or disagreement", "disagreement_summary", None, None),
    ("redbridge", "Is the adult at immediate risk of significant harm?", "adult_at_risk",
     None, None),
    ("redbridge", "Receiving professional", "others_involved.name", None, None),
    ("redbridge", "Agency receiving the concerns", "others_involved.agency", None, None),
    ("redbridge", "Agency raising concerns", "raiser_agency", None, None),
    ("redbridge", "Referring practitioner", "raiser_name", None, None),
    ("redbridge", "Date of disagreement", "date_raised", None, None),
]

# Wordings people really type: other word order, plurals, punctuation, case and small typos.
VARIANTS: list[tuple[str, str]] = [
    ("Adult's full name", "adult_name"),
    ("Full name of adult", "adult_name"),
    ("ADULT'S NAME", "adult_name"),
    ("Name of the adult", "adult_name"),
    ("Names of adults", "adult_name"),
    ("Name of adlut", "adult_name"),
    ("Adult's Name (full)", "adult_name"),
    ("Adress", "adult_address"),
    ("Date of brith", "adult_dob"),
    ("Date-of-birth", "adult_dob"),
    ("Birth date", "adult_dob"),
    ("Brief details of professional difference", "disagreement_summary"),
    ("Breif details of professional difference", "disagreement_summary"),
    ("Professional difference, brief details of", "disagreement_summary"),
    ("Summary of the disagreements", "disagreement_summary"),
    ("Other agencies", "others_involved.agency"),
    ("Other Professionals Role", "others_involved.role"),
    ("E-mail address", "raiser_email"),
    ("Name of person raising concern", "raiser_name"),
    ("Name of the person raising the concern", "raiser_name"),
    ("Nmae of person raising concern", "raiser_name"),
    ("Has the disagreement been resolved?", "resolved"),
    ("Further discussion at a particular SSP Subgroup", "subgroup_discussion"),
    ("Learning for the wider partnerships", "learning_partnership"),
]


def _value(target: str, written: str | None, expected: dict[str, Any] | None
           ) -> tuple[str, dict[str, Any]]:
    sample = SAMPLE.get(target, ("", {}))
    return (written if written is not None else sample[0],
            expected if expected is not None else sample[1])


def _got(ex: Extraction, key: str) -> Any:
    if key.startswith("extra."):
        return ex.extra.get(key[6:])
    if key.startswith("others_involved."):
        people = ex.fields.get("others_involved") or [{}]
        return people[0].get(key.split(".", 1)[1])
    return ex.fields.get(key)


# The row under test sits between two other fields' rows, so a label that is not recognised, or
# a value that runs on, shows.
BEFORE = ("Methodology used to resolve conflict:", "Professionals meeting")
AFTER = ("Form completed by:", "Dana Sample")


def _plain(rows: list[tuple[str, str]]) -> str:
    return "\n".join(f"{label.rstrip(':')}: {value}" for label, value in rows)


def _html(rows: list[tuple[str, str]]) -> str:
    return html_to_text(outlook_html(html_table(rows)))


def _docx(rows: list[tuple[str, str]]) -> str:
    return docx_text(make_docx(rows, "Escalation"), ParseLimits(), [])


RENDER = {"text": _plain, "html": _html, "docx": _docx}


def _check(rendering: str, label: str, written: str, expected: dict[str, Any]) -> None:
    text = RENDER[rendering]([BEFORE, (label, written), AFTER])
    ex = extract_best(text)
    for key, value in expected.items():
        assert _got(ex, key) == value, (key, text)
    # Nothing else was read into a canonical field, and the neighbours kept their values.
    wanted = {k.split(".")[0] for k in expected}
    assert {k for k in ex.fields if k in CANONICAL} <= wanted, ex.fields
    assert ex.extra.get("methodology") == "Professionals meeting"
    assert ex.extra.get("completed_by") == "Dana Sample"


@pytest.mark.parametrize("rendering", sorted(RENDER))
@pytest.mark.parametrize("seed,label,target,written,expected", SEED_WORDINGS,
                         ids=[f"{s}:{lab[:40]}" for s, lab, *_ in SEED_WORDINGS])
def test_every_seed_wording_is_read(rendering: str, seed: str, label: str, target: str,
                                    written: str | None, expected: dict[str, Any] | None) -> None:
    _check(rendering, label, *_value(target, written, expected))


@pytest.mark.parametrize("rendering", sorted(RENDER))
@pytest.mark.parametrize("label,target", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_variants_and_typos_are_read(rendering: str, label: str, target: str) -> None:
    _check(rendering, label, *_value(target, None, None))


def test_seed_table_covers_every_canonical_field_the_seeds_name() -> None:
    named = {t.split(".")[0] if t.startswith("extra.") else t for _, _, t, _, _ in SEED_WORDINGS}
    assert {"adult_name", "adult_dob", "adult_address", "adult_identifier", "raiser_name",
            "raiser_agency", "others_involved", "disagreement_summary", "date_raised",
            "adult_at_risk", "resolved", "agreed_outcome", "reason_unresolved", "stage",
            "category", "learning_agency", "learning_partnership", "training_needed",
            "new_protocol", "subgroup_discussion"} <= named
    assert {seed.split()[0] for seed, *_ in SEED_WORDINGS} == {
        "swindon", "kent", "shropshire", "luton", "redbridge"}


# --- different fields are not confused -----------------------------------------------------------

@pytest.mark.parametrize("rendering", sorted(RENDER))
@pytest.mark.parametrize("first,second", [
    (("Name of adult", "adult_name"), ("Name of person raising concern", "raiser_name")),
    (("Agency", "raiser_agency"), ("Other agency", "others_involved.agency")),
    (("Date of birth", "adult_dob"), ("Date of escalation", "date_raised")),
    (("Your role", "raiser_role"), ("Their role", "others_involved.role")),
    (("Other professional's role", "others_involved.role"),
     ("Other professional's email", "others_involved.email")),
    (("Is the adult at risk?", "adult_at_risk"), ("Name of adult at risk", "adult_name")),
    (("Agency raising concerns", "raiser_agency"),
     ("Agency receiving the concerns", "others_involved.agency")),
    (("Stage of the safeguarding process", "category"), ("Stage", "stage")),
])
def test_labels_of_different_fields_are_not_confused(rendering: str, first: tuple[str, str],
                                                     second: tuple[str, str]) -> None:
    for a, b in ((first, second), (second, first)):
        rows = [(a[0], _value(a[1], None, None)[0]), (b[0], _value(b[1], None, None)[0])]
        ex = extract_best(RENDER[rendering](rows))
        for label, target in (a, b):
            for key, value in _value(target, None, None)[1].items():
                assert _got(ex, key) == value, (label, ex.fields)


@pytest.mark.parametrize("query,field", [
    # near misses: accepted
    ("Name of adlut", "adult_name"), ("Adress", "adult_address"),
    ("Date of brith", "adult_dob"), ("Name of person raisng concern", "raiser_name"),
    ("Other agencys", "others_involved.agency"), ("Adult name of", "adult_name"),
    ("Agency rasing concerns", "raiser_agency"),
    ("Agency recieving the concerns", "others_involved.agency"),
    # a different field's label, or no label: rejected (None) or read as its own field
    ("Name of person raising concern", "raiser_name"), ("Name of adult", "adult_name"),
    ("Other agency", "others_involved.agency"), ("Agency", "raiser_agency"),
    ("Date of escalation", "date_raised"), ("Date of birth", "adult_dob"),
    ("Date of referral", None), ("Agenda", None), ("Name of GP", None), ("Other", None),
    ("Your agenda", None), ("Adult social care", None), ("Name of agency", None),
])
def test_fuzzy_threshold(query: str, field: str | None) -> None:
    cat = load_catalogue()
    hit = cat.index.match(f"{query}: value")
    target = cat.shared[hit.key].target if hit is not None and hit.key in cat.shared else None
    assert target == field, hit


def test_threshold_sits_between_a_typo_and_a_neighbouring_field() -> None:
    index = LabelIndex(["Name of adult", "Other professional's role", "Other professional's email",
                        "Address"])
    typo = index.match("Name of adilt: x")
    assert typo is not None and typo.key == "name adult" and FUZZY_CUTOFF <= typo.score < 100
    assert index.match("Adress: x") is not None
    # "role" written where only "email" is known scores well under the cutoff; the closest pair
    # of different fields' wordings ("raising" / "receiving") just under it.
    only_email = LabelIndex(["Other professional's email"])
    assert only_email.match("Other professional's role: x") is None
    assert only_email.match("Other profesional's email: x") is not None
    only_receiving = LabelIndex(["Agency receiving the concerns"])
    assert only_receiving.match("Agency raising concerns: x") is None
    assert only_receiving.match("Agency recieving concerns: x") is not None


# --- a label never swallows the next ------------------------------------------------------------

@pytest.mark.parametrize("rendering", ["text", "docx"])
def test_a_bare_label_followed_by_a_label_is_empty(rendering: str) -> None:
    rows = [("Name of adult", ""), ("Name of person raising concern", "Ada Testperson"),
            ("Date of birth", ""), ("Date of referral", ""), ("Your agency", "Example Trust"),
            ("Address", ""), ("Name of GP", ""), ("Other agency", ""), ("Type of support:", ""),
            ("Summary of disagreement", "Joint visit declined.")]
    if rendering == "text":
        text = "\n".join(f"{label}:{' ' + value if value else ''}" for label, value in rows)
    else:
        text = _docx(rows)
    ex = extract_best(text)
    for empty in ("adult_name", "adult_dob", "adult_address", "others_involved"):
        assert empty not in ex.fields, ex.fields
    assert ex.fields["raiser_name"] == "Ada Testperson"
    assert ex.fields["raiser_agency"] == "Example Trust"
    assert ex.fields["disagreement_summary"] == "Joint visit declined."


@pytest.mark.parametrize("line", ["Police Service of Scotland", "Adult Social Care and Health",
                                  "Bertie Testperson", "Social Worker", "Other"])
def test_a_value_on_the_line_below_its_label_is_still_read(line: str) -> None:
    ex = extract_best(f"Your agency\n{line}\nSummary of disagreement\nJoint visit declined.")
    assert ex.fields["raiser_agency"] == line


def test_each_form_stops_at_every_other_forms_labels() -> None:
    """Appendix 2 does not know the Stage 1/2 labels but must not read them as its summary."""
    text = ("Brief details of professional difference: Nurses declined a joint visit.\n"
            "Has the disagreement been resolved at Stage 1 or 2: Yes ☐ No ☒\n"
            "Name, Role and Agency of person completing this form: Ada Testperson, Social "
            "Worker, Swindon Borough Council\n")
    cat = load_catalogue()
    from parsers.proforma import extract

    for defn in cat.forms:
        ex = extract(defn, text)
        summary = ex.fields.get("disagreement_summary")
        assert summary in (None, "Nurses declined a joint visit."), defn.name


# --- the two defects of issue 10 item 6 -------------------------------------------------------

def _form_mail(rows: list[tuple[str, str]], as_docx: bool) -> bytes:
    m = EmailMessage()
    m["From"] = "Ada Testperson <ada.testperson@swindon.example.gov.uk>"
    m["To"] = "escalations@ssp.example.org"
    m["Subject"] = "Escalation pro-forma"
    m["Message-ID"] = "<labels-test@swindon.example.gov.uk>"
    title = "Case Resolution Stage 1 / 2 Pro-forma"
    if as_docx:
        m.set_content("Please see the attached pro-forma.\n\nAda")
        m.add_attachment(make_docx(rows, title), maintype="application",
                         subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
                         filename="pro-forma.docx")
    else:
        m.set_content(title + "\n\n" + _plain(rows) + "\n\nKind regards\nAda\n")
    return m.as_bytes()


@pytest.mark.parametrize("as_docx", [False, True], ids=["text", "docx"])
def test_stage_1_form_with_appendix_2_summary_wording(as_docx: bool) -> None:
    """"Brief details of professional difference" (Appendix 2's wording) on a Stage 1 form was
    read by the Appendix 2 definition with the next row run into it."""
    rows = [("Brief details of professional difference:", v) if k.startswith("Brief details")
            else (k, v) for k, v in SWINDON_12]
    p = parse_message(_form_mail(rows, as_docx))
    assert p.kind == "form" and p.form == "swindon_stage_1_2"
    assert p.fields["disagreement_summary"] == SUMMARY
    for key in ("resolved", "raiser_name", "raiser_agency", "others_involved", "adult_name"):
        assert p.fields[key] == SWINDON_12_FIELDS[key]
    assert p.missing == []


@pytest.mark.parametrize("as_docx", [True, False], ids=["docx", "text"])
def test_adults_full_name_is_the_adults_name(as_docx: bool) -> None:
    rows = [("Adult's full name:", v) if k == "Name of adult:" else (k, v) for k, v in SWINDON_12]
    p = parse_message(_form_mail(rows, as_docx))
    assert p.kind == "form"
    assert p.fields["adult_name"] == "Bertie Testperson"
    assert "adult_name" not in p.missing


# --- bounded work -------------------------------------------------------------------------------

def test_at_most_one_fuzzy_lookup_a_line(monkeypatch) -> None:
    from parsers import labels

    calls = []
    real = labels.process.extractOne

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(len(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(labels.process, "extractOne", counting)
    prose = ("The team said: we will visit on Thursday and review the plan with the family, "
             "then write to everyone involved.\n")
    body = prose * 3000 + "x" * 400_000  # and one 400 KB line without a break
    lines = body.count("\n") + 1
    extract_best(body)
    assert 0 < len(calls) <= lines
    # each lookup only against keys of a length that could reach the cutoff
    assert max(calls) < len(load_catalogue().index.keys)


def test_two_fields_sharing_a_wording_are_refused(tmp_path) -> None:
    from parsers.proforma import FORMS_DIR

    (tmp_path / "_rules.toml").write_text((FORMS_DIR / "_rules.toml").read_text())
    (tmp_path / "_wordings.toml").write_text(
        '[[field]]\ntarget = "raiser_agency"\nlabels = ["Agency"]\n')
    (tmp_path / "x.toml").write_text(
        'name = "x"\n[[field]]\ntarget = "others_involved.agency"\nlabels = ["Agencies:"]\n')
    with pytest.raises(ValueError, match="names both raiser_agency and others_involved.agency"):
        load_catalogue(str(tmp_path))
