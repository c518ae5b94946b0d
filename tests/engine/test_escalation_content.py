"""The pro-forma travels with the case: the escalation to the next tier, the business-team copy and
the final alert carry the case in their body (text and HTML) and the form as received as an
attachment named by the reference only; subjects carry none of it; a partnership whose route is
not secure turns both off. Driven through the engine with a frozen clock; invented people only."""

from __future__ import annotations

import base64
import email
import io
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from docx import Document
from sqlalchemy import select

from mailflow.app import App
from mailflow.clock import FixedClock, parse_instant
from mailflow.db.models import Case, OutboxMessage
from mailflow.pipeline.sender import drain
from tests.conftest import make_config, make_form, make_message
from tests.engine.conftest import ASC_MANAGER, ASC_SENIOR, BUSINESS, CHAIR, RAISER, START, Harness

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

# A Swindon Stage 1/2 pro-forma typed into Word (blank paragraphs between the answers, as in the
# template); the raising agency's name has an ampersand, to show the HTML is escaped.
FORM_LINES = [
    "Case Resolution Stage 1 / 2 Pro-forma",
    "Name of adult: Bea Fictional",
    "DOB: 14/02/1948",
    "NHS number: 999 000 1234",
    "Address: 2 Sample Lane, Swindon SN2 0ZZ",
    "Name, Role and Agency of person completing this form: Jo Example, Ward Sister, Great Western Hospitals NHS "
    "Foundation Trust",
    "Your email: jo.example@gwh.nhs.example.org",
    "Other agency: Swindon Borough Council - Adult Social Care",
    "Brief details of the professional disagreement: Whether the home care package restarts on discharge & who "
    "funds the extra visits.",
    "Has the disagreement been resolved: No",
    "If not, please state why: The team managers met on 14/12/2026 and could not agree.",
    "Actions taken: Joint visit on 10/12/2026; case discussion at the discharge hub.",
]

# What the body must say, and the subject must not.
ADULT = ("Bea Fictional", "999 000 1234", "14 February 1948")
CASE_CONTENT = (
    *ADULT,
    "Great Western Hospitals NHS Foundation Trust",             # raising agency
    "Jo Example, Ward Sister",                                    # raising person
    "Swindon Borough Council - Adult Social Care",                # receiving agency
    "Whether the home care package restarts on discharge",       # the disagreement
    "The team managers met on 14/12/2026 and could not agree",    # what has been tried
    "Joint visit on 10/12/2026",
)
NEVER_IN_SUBJECT = (*CASE_CONTENT, "Fictional", "1948", "Sample Lane", "SN2", "home care")


def docx_form() -> bytes:
    doc = Document()
    for line in FORM_LINES:
        doc.add_paragraph(line)
        doc.add_paragraph("")
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def docx_message(document: bytes) -> bytes:
    msg = EmailMessage()
    msg["From"] = RAISER
    msg["To"] = "safeguarding@ssp.example.org"
    msg["Subject"] = "Escalation form"
    msg["Date"] = "Mon, 21 Dec 2026 09:55:00 +0000"
    msg["Message-ID"] = "<docx-form-1@gwh.nhs.example.org>"
    msg.set_content("Please see the attached pro-forma.\n\nJo")
    # The sender's file name names the adult: it must not travel on.
    msg.add_attachment(document, maintype="application", subtype=DOCX.split("/")[1],
                       filename="Bea Fictional escalation.docx")
    return msg.as_bytes()


def harness(tmp_path: Path, extra_partnership: str = "", extra: str = "") -> Harness:
    clock = FixedClock(parse_instant(START))
    config = make_config(tmp_path, f"sqlite:///{tmp_path / 'engine.db'}", extra_partnership=extra_partnership,
                         extra=extra)
    return Harness(App.open(config, clock), clock)


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness_ = harness(tmp_path)
    yield harness_
    harness_.app.close()


def parsed(row: OutboxMessage) -> EmailMessage:
    return email.message_from_bytes(row.raw, policy=policy.default)  # type: ignore[return-value]


def bodies(msg: EmailMessage) -> tuple[str, str]:
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def one(h: Harness, ref: str, kind: str, to: str) -> EmailMessage:
    rows = [r for r in h.outbox(ref, kind) if to in r.recipients]
    assert len(rows) == 1, [(r.kind, r.recipients) for r in h.outbox(ref)]
    return parsed(rows[0])


def attached_bytes(outer: bytes, filename: str) -> bytes:
    """The bytes of an attached message exactly as they stand in the sent mail."""
    head = f'filename="{filename}"\r\n\r\n'.encode()
    assert outer.count(head) == 1
    body = outer.split(head, 1)[1]
    boundary = email.message_from_bytes(outer).get_boundary()
    assert boundary is not None
    return body[:body.index(f"\r\n--{boundary}--".encode())]


def open_docx_case(h: Harness) -> tuple[str, bytes]:
    document = docx_form()
    outcome, reason = h.ingest(docx_message(document))
    assert outcome.name == "PROCESSED", reason
    with h.app.db.transaction() as s:
        ref = s.scalars(select(Case.reference).order_by(Case.id.desc())).one()
    return ref, document


def test_stage_2_escalation_and_business_copy_carry_the_case_and_the_docx(h: Harness) -> None:
    ref, document = open_docx_case(h)
    h.run_until("2026-12-31T09:00:00")   # Stage 1 ran out on Wed 30 Dec, 5pm (Christmas skipped)
    assert h.case(ref)["stage"] == 2

    escalation = one(h, ref, "escalation", ASC_SENIOR)
    business = one(h, ref, "business_copy", BUSINESS)
    for msg in (escalation, business):
        text, html = bodies(msg)
        for part in (text, html.replace("&amp;", "&")):
            for content in CASE_CONTENT:
                assert content in part, (msg["Subject"], content)
            # The stage history: each stage, when it began and why it moved.
            assert "Stage 1 (Manager / Safeguarding Lead to Manager / Safeguarding Lead), from Monday 21 December " \
                   "2026, 10am" in part
            assert "Stage 2 (Agency Partnership Representative to Agency Partnership Representative), from " \
                   "Wednesday 30 December 2026, 5pm: escalated from Stage 1 automatically: the Stage 1 resolve " \
                   "deadline (Wednesday 30 December 2026, 5pm) passed" in part
        assert "restarts on discharge &amp; who funds" in html   # autoescaped
        assert "Sample Lane" not in text + html                  # the address stays on the form only
        for content in NEVER_IN_SUBJECT:
            assert content not in str(msg["Subject"])
        # The form as received: the Word file's own bytes, under a name with no personal data.
        attachments = list(msg.iter_attachments())
        assert [(a.get_filename(), a.get_content_type()) for a in attachments] == [(f"{ref}-form-1.docx", DOCX)]
        assert attachments[0].get_content() == document
        assert f"{ref}-form-1.docx" in text

    # Queued as drafts, the form with them (the Stage 1 escalation by ingest, the Stage 2 one and its
    # business copy by the sweep): the MIME message is built by the sender, out of their transactions.
    # Sent, each is composed once and kept, the Word file's bytes intact.
    rows = [r for r in h.outbox(ref) if r.kind in ("escalation", "business_copy") and r.state == "pending"]
    assert len(rows) == 3 and all(r.stored_raw is None and r.draft for r in rows)
    assert all([a["filename"] for a in (r.draft or {})["attachments"]] == [f"{ref}-form-1.docx"] for r in rows)
    assert drain(h.rt, h.clock.now()).sent >= 3
    for row in rows:
        [sent] = [r for r in h.outbox(ref) if r.id == row.id]
        assert sent.state == "sent" and sent.draft is None and sent.stored_raw is not None
        assert [a.get_content() for a in parsed(sent).iter_attachments()] == [document]


def test_a_form_named_in_an_encoded_word_as_outlook_writes_it_still_travels(h: Harness) -> None:
    """A Word form sent as application/octet-stream under an RFC 2047 name ("=?utf-8?B?...?=", how
    Outlook names a non-ASCII file): recognised by its name's extension, attached under the reference."""
    document = docx_form()
    name = base64.b64encode("Évaluation Bea Fictional.docx".encode()).decode()
    raw = docx_message(document).replace(f"application/{DOCX.split('/')[1]}".encode(), b"application/octet-stream")
    raw = raw.replace(b'filename="Bea Fictional escalation.docx"', f'filename="=?utf-8?B?{name}?="'.encode())
    assert b"=?utf-8?B?" in raw and b"octet-stream" in raw
    outcome, reason = h.ingest(raw)
    assert outcome.name == "PROCESSED", reason
    ref = "SSP-2026-0001"
    escalation = one(h, ref, "escalation", ASC_MANAGER)
    attachments = list(escalation.iter_attachments())
    assert [(a.get_filename(), a.get_content_type()) for a in attachments] == [(f"{ref}-form-1.docx", DOCX)]
    assert attachments[0].get_content() == document


def test_no_subject_of_the_case_carries_its_content(h: Harness) -> None:
    ref, _ = open_docx_case(h)
    h.run_until("2027-02-15T09:00:00")   # through every stage to the final alert
    rows = h.outbox(ref)
    assert {"acknowledgement", "escalation", "business_copy", "final_alert"} <= {r.kind for r in rows}
    for row in rows:
        for content in NEVER_IN_SUBJECT:
            assert content not in row.subject and content not in str(parsed(row)["Subject"]), (row.kind, content)


def test_a_form_in_the_body_goes_as_the_attached_message_and_reaches_the_chair(h: Harness) -> None:
    # As a mail server stores it, with a header a re-generated copy would change ("X-MS-Has-Attach: ").
    raw = b"X-MS-Has-Attach:\r\n" + make_form().replace(b"\n", b"\r\n")
    outcome, reason = h.ingest(raw)
    assert outcome.name == "PROCESSED", reason
    ref = "SSP-2026-0001"
    h.run_until("2027-02-15T09:00:00")
    final = one(h, ref, "final_alert", CHAIR)
    text, html = bodies(final)
    for part in (text, html):
        for content in ("Ada Testperson", "3 April 1951", "Great Western Hospitals NHS Foundation Trust",
                        "Swindon Borough Council - Adult Social Care", "discharge care package"):
            assert content in part, content
        for stage in (1, 2, 3, 4):
            assert f"Stage {stage} (" in part
    attachment, = final.iter_attachments()
    assert attachment.get_content_type() == "message/rfc822"
    assert attachment.get_filename() == f"{ref}-form.eml"
    assert attachment.get_content()["Message-ID"] in raw.decode()
    assert attached_bytes(h.outbox(ref, "final_alert")[0].raw, f"{ref}-form.eml") == raw   # byte for byte
    assert "Ada" not in str(final["Subject"]) and "1951" not in str(final["Subject"])


def test_setting_off_sends_neither_the_details_nor_the_form(tmp_path: Path) -> None:
    h = harness(tmp_path, extra_partnership="send_form_with_escalations = false")
    try:
        ref, _ = open_docx_case(h)
        h.run_until("2026-12-31T09:00:00")
        escalation = one(h, ref, "escalation", ASC_SENIOR)
        business = one(h, ref, "business_copy", BUSINESS)
        for msg in (escalation, business):
            text, html = bodies(msg)
            for part in (text, html):
                for content in (*ADULT, "Jo Example", "home care package", "Joint visit", "could not agree"):
                    assert content not in part, (msg["Subject"], content)
                assert "not sent by email" in part
            assert list(msg.iter_attachments()) == []
        assert BUSINESS in bodies(escalation)[0]                       # whom to ask
        assert f"mailflow cases show {ref}" in bodies(business)[0]     # where the business team looks
    finally:
        h.app.close()


def test_a_form_over_the_size_limit_is_not_attached_and_the_notice_says_so(tmp_path: Path) -> None:
    h = harness(tmp_path, extra="[limits]\nmax_attachment_bytes = 500")
    try:
        raw = make_form()
        assert len(raw) > 500
        h.ingest(raw)
        escalation = one(h, "SSP-2026-0001", "escalation", "priya.examplewood@asc.swindon.example.org")
        assert list(escalation.iter_attachments()) == []
        text, _ = bodies(escalation)
        assert "The original form is not attached: the form message" in text and "size limit" in text
        assert "Ada Testperson" in text   # the details still travel
    finally:
        h.app.close()


def test_the_form_is_built_once_for_the_notices_of_one_change(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from mailflow.pipeline import case_file

    built: list[int] = []
    real = case_file._build_original_form  # noqa: SLF001 - counts how often the form is built

    def counting(s, case, max_bytes):  # type: ignore[no-untyped-def]
        built.append(case.id)
        return real(s, case, max_bytes)

    monkeypatch.setattr(case_file, "_build_original_form", counting)
    ref, document = open_docx_case(h)
    h.run_until("2026-12-31T09:00:00")
    carrying = [r for r in h.outbox(ref) if r.kind in case_file.KINDS]
    assert [r.kind for r in carrying] == ["escalation", "escalation", "business_copy"]
    assert all(document in b"".join(a.get_content() for a in parsed(r).iter_attachments()) for r in carrying)
    assert len(built) == 2   # once when the case opened, once for Stage 2's escalation and business copy


def test_the_case_file_is_escaped_in_html_and_keeps_its_line_breaks(h: Harness) -> None:
    from mailflow.db.models import Case as CaseRow
    from mailflow.pipeline.case_file import describe
    from mailflow.pipeline.notices import case_context

    now = h.clock.now()
    case = CaseRow(reference="SSP-2026-0009", partnership="SSP", policy="swindon", state="open", stage=1,
                   urgent=False, missing=[], opened_at=now, stage_started_at=now, updated_at=now,
                   fields={"adult_name": "Cy <b>Madeup</b>", "raiser_agency": "A & B",
                           "disagreement_summary": "First line <script>x</script>\nSecond line",
                           "extra": {"methodology": "Phone call\nthen a meeting"}})
    case.participants, case.deadlines, case.events = [], [], []
    rt = h.rt
    for kind in ("escalation", "business_copy", "final_alert"):
        mail = rt.renderer.render(kind, {"partnership": rt.config, **case_context(
            rt, case, case_file=describe(case, rt.policy), previous_stage=None, reason="r", automatic=False)})
        assert "<script>" not in mail.html and "<b>Madeup" not in mail.html
        assert "Cy &lt;b&gt;Madeup&lt;/b&gt;" in mail.html and "A &amp; B" in mail.html
        assert "First line &lt;script&gt;x&lt;/script&gt;<br>\nSecond line" in mail.html
        assert "How resolution was attempted: Phone call<br>\nthen a meeting" in mail.html
        assert "First line <script>x</script>\nSecond line" in mail.text   # the text part is plain
        assert "Madeup" not in mail.subject


def test_a_long_disagreement_reaches_the_next_tier_whole(h: Harness) -> None:
    """The notice is stored as a draft until sent: its text and HTML bodies are kept whole, however
    long (only what comes from a message is bounded, field by field, as it is read)."""
    words = " ".join(f"point{i} the package, the visits and who funds them;" for i in range(160))
    summary = f"Brief details of the professional disagreement: {words} END-OF-SUMMARY"
    assert 8_000 < len(summary) < 10_000      # within the bound on one form field
    body = "\n".join(line if not line.startswith("Brief details") else summary for line in FORM_LINES)
    outcome, reason = h.ingest(make_message("jo.example@gwh.nhs.example.org", "Escalation form", body))
    assert outcome.value == "processed", reason
    with h.app.db.transaction() as s:
        ref = s.scalars(select(Case.reference).order_by(Case.id.desc())).first()
    [esc] = h.outbox(ref, "escalation")
    text, html = bodies(parsed(esc))
    assert len(html) > 10_000 and len(text) > 8_000
    for part in (text, html):
        assert "END-OF-SUMMARY" in part and "point159 the package" in part and "…" not in part


def test_a_draft_keeps_its_long_bodies_whole(h_any: Harness) -> None:
    """Notices queued as drafts (the sweep's) keep every character of their rendered bodies, through
    the session's flush and the sweep's bulk insert alike; a form's values stay bounded."""
    from mailflow.db.bounds import JSON_STRING_CHARS
    from mailflow.pipeline.sweep import insert_queued

    at = parse_instant(START)
    long_html = "<p>" + "the extra visits and who funds them; " * 1_000 + "END</p>"
    assert len(long_html) > 3 * JSON_STRING_CHARS
    draft = {"subject": "s", "text": long_html, "html": long_html, "date": at.isoformat(), "envelope": {}}
    with h_any.app.db.transaction() as s:
        for how in ("flush", "bulk"):
            s.add(OutboxMessage(partnership="SSP", kind=f"test-{how}", message_id=f"<{how}@test>",
                                envelope_from="a@x.example", recipients=["b@x.example"], subject="s",
                                draft=dict(draft), next_attempt_at=at, created_at=at))
            if how == "bulk":
                insert_queued(s)
            s.flush()
        s.add(Case(reference="SSP-2026-9999", partnership="SSP", policy="swindon", state="open",
                   fields={"disagreement_summary": long_html}, opened_at=at, stage_started_at=at, updated_at=at))
    with h_any.app.db.transaction() as s:
        for row in s.scalars(select(OutboxMessage).where(OutboxMessage.kind.like("test-%"))):
            assert row.draft is not None and row.draft["html"] == long_html and row.draft["text"] == long_html
        fields = s.scalars(select(Case.fields).where(Case.reference == "SSP-2026-9999")).one()
        assert len(fields["disagreement_summary"]) == JSON_STRING_CHARS
