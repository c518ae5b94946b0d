"""Unit tests: values, commands, case references, Authentication-Results, classification, CLI."""

from __future__ import annotations

import json

import pytest

from mailflow.cli.main import main as cli_main
from parsers import parse_message
from parsers.authresults import parse_auth_results
from parsers.proforma import extract_best, looks_like_form, missing_fields
from parsers.replies import (
    case_from_thread,
    extract_commands,
    new_text_of,
    ref_from_subject,
    token_from_addresses,
)
from parsers.values import parse_bool, parse_date, split_people, split_person


@pytest.mark.parametrize("text,iso", [
    ("03/04/1951", "1951-04-03"), ("3/4/1951", "1951-04-03"), ("3 April 1951", "1951-04-03"),
    ("3rd April 1951", "1951-04-03"), ("03.04.1951", "1951-04-03"), ("1951-04-03", "1951-04-03"),
    ("3 Apr. 1951", "1951-04-03"), ("April 3, 1951", "1951-04-03"), ("31/02/1951", None),
    ("unknown", None), ("29 February 2024", "2024-02-29"),
])
def test_british_dates(text: str, iso: str | None) -> None:
    assert parse_date(text) == iso


@pytest.mark.parametrize("text,value", [
    ("Yes ☒ No ☐", True), ("Yes ☐ No ☒", False), ("☐ Yes ☒ No", False), ("☒ Yes ☐ No", True),
    ("Yes [X] No [ ]", True), ("Yes [ ] No [X]", False), ("Yes X No", True), ("Yes No X", False),
    ("Yes/~~No~~", True), ("~~Yes~~ / No", False), ("Yes", True), ("no", False), ("Y", True),
    ("Yes No", None), ("", None), ("Yes ☒ No ☒", None), ("maybe", None),
    ("Yes - to be arranged", True),
])
def test_tick_boxes(text: str, value: bool | None) -> None:
    assert parse_bool(text) is value


def test_person_and_people_splitting() -> None:
    assert split_person("Ada Testperson, Social Worker, Swindon Borough Council, Adult Services",
                        ["raiser_name", "raiser_role", "raiser_agency"]) == {
        "raiser_name": "Ada Testperson", "raiser_role": "Social Worker",
        "raiser_agency": "Swindon Borough Council, Adult Services"}
    assert split_person("Dana Sample (dana.sample@police.example) 01632 960003",
                        ["raiser_name", "raiser_email", "raiser_phone"]) == {
        "raiser_name": "Dana Sample", "raiser_email": "dana.sample@police.example",
        "raiser_phone": "01632 960003"}
    people = split_people("Carl Example, District Nurse, NHS Trust; Role: GP, Name: Dr Who")
    assert people == [
        {"name": "Carl Example", "role": "District Nurse", "agency": "NHS Trust", "email": None},
        {"name": "Dr Who", "role": "GP", "agency": None, "email": None}]


def test_labels_need_a_separator_for_short_labels() -> None:
    ex = extract_best("Address the issue early.\nAgency policies apply.\nStage one is talking.")
    assert ex.fields == {}
    assert not looks_like_form(ex)


def test_missing_lists_exactly_what_a_case_needs() -> None:
    assert missing_fields({}) == ["adult_name", "raiser_name", "raiser_agency", "raiser_email",
                                  "others_involved", "disagreement_summary"]
    full = {"adult_identifier": "999 000 0001", "raiser_name": "A", "raiser_agency": "B",
            "raiser_email": "a@b.example", "disagreement_summary": "x",
            "others_involved": [{"name": "C", "role": None, "agency": None, "email": None}]}
    assert missing_fields(full) == ["others_involved"]  # a name but no agency
    full["others_involved"][0]["agency"] = "D"
    assert missing_fields(full) == []


# --- replies -----------------------------------------------------------------------------------

def test_case_reference_sources() -> None:
    assert case_from_thread(None, ["<x@y>", "<SSP-2026-0007.3f9a1c2b7d@mailflow.example>"]) \
        == "SSP-2026-0007"
    assert case_from_thread("<SSP-2026-0007@elsewhere.example>", []) is None  # no nonce
    assert token_from_addresses(["a@b.example", "esc+SSP-2026-0012.ab12cd34ef56@x.example"]) == (
        "SSP-2026-0012.ab12cd34ef56", "SSP-2026-0012")
    assert token_from_addresses(["esc+other@x.example"]) is None
    for subject in ("RE: [SSP-2026-0007] x", "AW: FW: [secure] [SSP-2026-0007]",
                    "Re: SSP-2026-0007 update", "RE:[KMSAB1-2026-12345]"):
        assert ref_from_subject(subject) in ("SSP-2026-0007", "KMSAB1-2026-12345")
    assert ref_from_subject("Ref SSP-2026-007 and x-SSP-2026-0007") is None
    assert ref_from_subject("order 2026-0007") is None


def test_commands_as_a_user_expects() -> None:
    cmds, warns = extract_commands(
        "#Resolved: agreed a joint visit\non Thursday.\n\n#EXTEND 5 working days - awaiting"
        " records\n#foo bar\n  #urgent\nnot #escalate mid-line\n#withdraw")
    assert [(c.name, c.text) for c in cmds] == [
        ("resolved", "agreed a joint visit\non Thursday."), ("extend", "5 awaiting records"),
        ("urgent", ""), ("withdraw", "")]
    assert "unknown command #foo ignored" in warns
    assert "#withdraw without a reason" in warns
    assert "#withdraw given with other commands" in warns


def test_quoted_commands_are_ignored() -> None:
    text = "Thanks.\n\nOn Mon, 2 Mar 2026 at 10:20, SSP <e@x.example> wrote:\n> #escalate now\n"
    new, _ = new_text_of(text, "")
    assert new == "Thanks."
    assert extract_commands(new)[0] == []
    assert extract_commands("> #resolved quoted inline\n")[0] == []


def test_html_only_reply_markers() -> None:
    html = ('<div>#confirmed</div><hr><div id="divRplyFwdMsg"><b>From:</b> x</div>'
            "<div>#escalate old</div>")
    new, _ = new_text_of("", html)
    assert new == "#confirmed"
    html = ('<p>#urgent</p><div style="border:none;border-top:solid #E1E1E1 1.0pt">'
            "<p>From: x</p></div><p>#resolved old</p>")
    assert new_text_of("", html)[0] == "#urgent"


# --- headers -----------------------------------------------------------------------------------

def test_authentication_results_lenient_topmost_only() -> None:
    exo = ("spf=pass (sender IP is 1.2.3.4) smtp.mailfrom=a.example; dkim=fail (body hash did "
           "not verify) header.d=a.example;dmarc=pass action=none header.from=a.example;"
           "compauth=pass reason=100")
    lower = "mx.example; spf=fail smtp.mailfrom=a.example"
    assert parse_auth_results([exo, lower]) == {
        "spf": "pass", "dkim": "fail", "dmarc": "pass", "compauth": "pass"}
    assert parse_auth_results(["mx.google.example; dkim=pass header.i=@a.example"]) == {
        "dkim": "pass"}
    assert parse_auth_results([]) == {}
    assert parse_auth_results(["mx.example; none"]) == {}


def _raw(headers: str, body: str = "hello") -> bytes:
    return (headers.strip() + "\n\n" + body).encode()


@pytest.mark.parametrize("headers,kind", [
    ("From: a@x.example\nSubject: [SSP-2026-0001] x\nAuto-Submitted: auto-generated",
     "auto_reply"),
    ("From: a@x.example\nSubject: [SSP-2026-0001] x\nAuto-Submitted: no", "reply"),
    ("From: a@x.example\nSubject: [SSP-2026-0001] x\nPrecedence: bulk", "auto_reply"),
    ("From: a@x.example\nSubject: [SSP-2026-0001] x\nReturn-Path: <>", "auto_reply"),
    ("From: MAILER-DAEMON@x.example\nSubject: [SSP-2026-0001] x", "auto_reply"),
    ("From: list-request@x.example\nSubject: [SSP-2026-0001] x", "unrelated"),
    ("From: a@x.example\nSubject: [SSP-2026-0001] x\nList-Id: <l.x.example>", "unrelated"),
    ("From: a@x.example\nSubject: Out of office\nX-Auto-Response-Suppress: All\n"
     "X-MS-Exchange-Inbox-Rules-Loop: a@x.example", "auto_reply"),
])
def test_loop_protection(headers: str, kind: str) -> None:
    p = parse_message(_raw(headers))
    assert p.kind == kind
    assert p.automated == (kind != "reply")


def test_reply_fields_come_from_new_text_only() -> None:
    body = ("Your agency: Example Housing Trust\n\nOn Mon, 2 Mar 2026, X <x@x.example> wrote:\n"
            "> Name of adult: Quoted Person\n")
    p = parse_message(_raw("From: e@h.example\nSubject: RE: [SSP-2026-0007] missing", body))
    assert p.kind == "reply"
    assert p.fields == {"raiser_agency": "Example Housing Trust"}
    assert p.missing == []
    assert "Quoted Person" in p.full_text and "Quoted Person" not in p.new_text


# --- CLI ---------------------------------------------------------------------------------------

def test_cli_json_and_text(tmp_path, capsys) -> None:
    f = tmp_path / "m.eml"
    f.write_bytes(_raw("From: a@x.example\nSubject: RE: [SSP-2026-0007] x",
                       "#resolved agreed\n"))
    assert cli_main(["parse", str(f), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "reply" and out["case_ref"] == "SSP-2026-0007"
    assert out["commands"] == [{"name": "resolved", "text": "agreed"}]
    assert set(out) >= {"kind", "case_ref", "commands", "fields", "missing", "warnings"}
    assert cli_main(["parse", str(f)]) == 0
    text = capsys.readouterr().out
    assert "kind:      reply" in text and "#resolved agreed" in text


def test_cli_bounds_a_hostile_file_as_the_daemon_does(tmp_path, capsys) -> None:
    """`mailflow parse` refuses a file over the message size limit (read no further than the
    limit) and parses in the worker process, as ingest does."""
    from parsers import ParseLimits
    from parsers.worker import shared_worker

    big = tmp_path / "big.eml"
    with big.open("wb") as fh:
        fh.write(b"From: a@x.example\r\nSubject: big\r\n\r\n")
        fh.truncate(ParseLimits().max_message_bytes + 4096)
    assert cli_main(["parse", str(big), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "unrelated" and "larger than" in out["rejected"]
    started = shared_worker().started
    f = tmp_path / "m.eml"
    f.write_bytes(_raw("From: a@x.example\nSubject: RE: [SSP-2026-0007] x", "#resolved agreed\n"))
    assert cli_main(["parse", str(f), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "reply"
    assert shared_worker().started >= max(started, 1)   # parsed in the worker process


def test_cli_unreadable_file(tmp_path, capsys) -> None:
    assert cli_main(["parse", str(tmp_path / "absent.eml")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mailflow: cannot read") and "\n" not in err


@pytest.mark.parametrize("header,addr", [
    (b'From: "Ada <ada@x.example>', None),          # unterminated quote: the address is a guess
    (b"From: =?utf-8?q?Ad=C3=A1?= <Ada@X.example>", "ada@x.example"),
    (b"From: <ada@x.example", None),                # unterminated angle address
    (b"From: Ada Test <ada@[bad domain]>", None),
])
def test_a_malformed_from_names_no_sender(header: bytes, addr: str | None) -> None:
    """The sender is the parsed address or nobody: a malformed From is never guessed at."""
    p = parse_message(header + b"\r\nSubject: x\r\n\r\nbody")
    assert p.rejected is None
    assert p.from_addr == addr
    assert (p.sender_problem is None) is (addr is not None)
    if addr is None:
        assert any(w.startswith("no single sender address") for w in p.warnings)


def test_reply_with_attached_form_gets_its_fields() -> None:
    from email.message import EmailMessage

    from tests.fixtures.mail.make_corpus import APPENDIX_2, make_pdf, pdf_rows

    m = EmailMessage()
    m["From"] = "dana.sample@police.example"
    m["Subject"] = "RE: [SSP-2026-0007] Stage 2"
    m.set_content("#note Appendix 2 attached.\n\nOn Mon, X <x@x.example> wrote:\n> Name of adult: Q")
    m.add_attachment(make_pdf(pdf_rows(APPENDIX_2)), maintype="application", subtype="pdf",
                     filename="appendix2.pdf")
    p = parse_message(m.as_bytes())
    assert p.kind == "reply"
    assert [c.name for c in p.commands] == ["note"]
    assert p.fields["adult_name"] == "Cora Testperson"
    assert p.fields["raiser_email"] == "dana.sample@police.example"


def test_a_new_form_is_data_only(tmp_path) -> None:
    from parsers.proforma import FORMS_DIR

    (tmp_path / "_rules.toml").write_text((FORMS_DIR / "_rules.toml").read_text())
    (tmp_path / "luton.toml").write_text(
        'name = "luton_template"\nmarkers = ["LSAB Escalation Template"]\n'
        '[[field]]\ntarget = "adult_name"\nlabels = ["Service user"]\n'
        '[[field]]\ntarget = "adult_at_risk"\ntype = "bool"\nlabels = ["Risk now"]\n'
        '[[field]]\ntarget = "others_involved.agency"\nlabels = ["Escalated to"]\n')
    ex = extract_best("LSAB Escalation Template\nService user: Ada T\nRisk now: Yes ☒ No ☐\n"
                      "Escalated to: Example Trust\n", str(tmp_path))
    assert ex.form == "luton_template" and ex.marker
    assert ex.fields == {"adult_name": "Ada T", "adult_at_risk": True, "others_involved": [
        {"name": None, "role": None, "agency": "Example Trust", "email": None}]}


def test_command_text_stops_at_a_sign_off() -> None:
    cmds, _ = extract_commands("#resolved Joint visit agreed\nfor Thursday.\nKind regards\nFaye")
    assert [(c.name, c.text) for c in cmds] == [("resolved", "Joint visit agreed\nfor Thursday.")]


def test_forwarded_message_kept_separate() -> None:
    from tests.parsers.test_corpus import CORPUS

    p = parse_message((CORPUS / "fwd_rfc822_docx_swindon.eml").read_bytes())
    assert p.forwards == [{"from": "ada.testperson@swindon.example.gov.uk",
                           "subject": "Escalation pro-forma",
                           "message_id": "<inner-docx@swindon.example.gov.uk>",
                           "date": "2026-02-27T16:02:00+00:00",
                           "attachments": ["pro-forma.docx"]}]
    assert "Forwarding Ada's pro-forma" in p.full_text
    assert "Bertie" not in p.full_text  # the forward's content is not merged into the body
    assert p.fields["raiser_email"] == "ada.testperson@swindon.example.gov.uk"


def test_outlook_msg_attachment_becomes_a_forward() -> None:
    """A received form dragged into a new Outlook mail arrives as a .msg (built to MS-OXMSG by
    tests/parsers/msg_writer.py and read by the real extract-msg)."""
    from datetime import UTC, datetime
    from email.message import EmailMessage

    from tests.parsers.msg_writer import outlook_msg

    body = ("Name of adult: Ada Testperson\r\nDOB: 03/04/1951\r\nYour agency: Example Trust\r\n"
            "Summary of disagreement: discharge plan\r\nOther agency: Example Council\r\n")
    msg = outlook_msg(sender_name="Carl Example", sender_email="carl.example@nhs.example",
                      to="Faye Demo <faye.demo@swindon.example.gov.uk>", subject="Escalation form",
                      body=body + "Notes: " + "the care plan was discussed at length. " * 150,
                      sent=datetime(2026, 3, 2, 10, 15, tzinfo=UTC),
                      attachments={"chronology.txt": b"2 March: discharge planned\n"})
    m = EmailMessage()
    m["From"] = "faye.demo@swindon.example.gov.uk"
    m["Subject"] = "FW: Escalation form"
    m.set_content("Forwarding.")
    m.add_attachment(msg, maintype="application", subtype="vnd.ms-outlook",
                     filename="Escalation form.msg")
    p = parse_message(m.as_bytes())
    assert p.forwards[0]["from"] == "carl.example@nhs.example"
    assert p.forwards[0]["subject"] == "Escalation form"
    assert p.forwards[0]["date"].startswith("2026-03-02T10:15")
    assert p.kind == "form"
    assert p.fields["adult_dob"] == "1951-04-03"
    assert p.fields["raiser_email"] == "carl.example@nhs.example"  # the .msg author
    assert p.forwards[0]["attachments"] == ["chronology.txt"]


def test_exchange_ndr_flag_alone_is_a_bounce() -> None:
    raw = _raw("From: Ada <ada@x.example>\nSubject: Message not delivered\n"
               "X-MS-Exchange-Message-Is-Ndr:\n",
               "Delivery has failed to these recipients or groups:\n\nbob@y.example\n\n"
               "Message-ID: <SSP-2026-0009.abcdef12@mailflow.example>\n")
    p = parse_message(raw)
    assert p.kind == "bounce" and p.automated
    assert p.bounced_recipients == ["bob@y.example"]
    assert p.case_ref == "SSP-2026-0009"
