"""Outlook "Rich Text" mail: the body exists only as compressed RTF inside winmail.dat. Outlook
writes it from HTML or plain text and keeps that inside (\\fromhtml1, \\fromtext); the form in
it must be read like any other. Invented people only."""

from __future__ import annotations

from email.message import EmailMessage

from parsers import parse_message
from tests.parsers.tnef_writer import rich_text_tnef

FORM_LINES = [
    "Case Resolution Stage 1 / 2 Pro-forma",
    "Name of adult: Ada Testperson",
    "DOB: 03/04/1951",
    "Name, Role and Agency of person completing this form: Jo Example, Ward Sister, "
    "Great Western Hospitals NHS Foundation Trust",
    "Other agency: Swindon Borough Council - Adult Social Care",
    "Brief details of the professional disagreement: the discharge care package costs "
    "\u00a3200 a week more than agreed.",
]


def rtf_escape(text: str) -> str:
    out = text.replace("\\", "\\\\").replace("{", "\\{").replace("}", "\\}")
    return "".join(c if ord(c) < 128 else f"\\'{c.encode('cp1252')[0]:02x}" for c in out)


def from_text(lines: list[str]) -> bytes:
    """RTF as Outlook writes it for a plain-text message sent in Rich Text."""
    body = "".join(f"{rtf_escape(line)}\\par\n" for line in lines)
    return ("{\\rtf1\\ansi\\ansicpg1252\\fromtext \\fbidis \\deff0{\\fonttbl\n{\\f0\\fswiss Arial;}}\n"
            "\\uc1\\pard\\plain\\deftab360 \\f0\\fs20 " + body + "}").encode("ascii")


def from_html(rows: list[tuple[str, str]]) -> bytes:
    """RTF as Outlook writes it for an HTML message: the HTML kept in \\htmltag groups."""
    cells = "".join(
        f"{{\\*\\htmltag72 <tr>}}{{\\*\\htmltag80 <td>}}{rtf_escape(k)}{{\\*\\htmltag88 </td>}}"
        f"{{\\*\\htmltag80 <td>}}{rtf_escape(v)}{{\\*\\htmltag88 </td>}}{{\\*\\htmltag96 </tr>}}\n"
        for k, v in rows)
    return ("{\\rtf1\\ansi\\ansicpg1252\\fromhtml1 \\deff0{\\fonttbl\n{\\f0\\fswiss\\fcharset0 Arial;}}\n"
            "{\\*\\htmltag19 <html>}\n{\\*\\htmltag50 <body>}\\htmlrtf {\\htmlrtf0\n"
            "{\\*\\htmltag64 <table>}\n" + cells + "{\\*\\htmltag104 </table>}\n"
            "\\htmlrtf }\\htmlrtf0\n{\\*\\htmltag58 </body>}\n{\\*\\htmltag27 </html>}}").encode("ascii")


def outlook_rich_text(rtf: bytes) -> bytes:
    m = EmailMessage()
    m["From"] = "jo.example@gwh.nhs.example.org"
    m["To"] = "safeguarding@ssp.example.org"
    m["Subject"] = "Escalation form"
    m["Message-ID"] = "<rich-text-1@gwh.nhs.example.org>"
    m.set_content("")                       # Outlook leaves the MIME body empty
    m.add_attachment(rich_text_tnef(rtf), maintype="application", subtype="ms-tnef",
                     filename="winmail.dat")
    return m.as_bytes()


def test_form_written_as_text_is_read() -> None:
    p = parse_message(outlook_rich_text(from_text(FORM_LINES)))
    assert p.kind == "form", p.warnings
    assert p.fields["adult_name"] == "Ada Testperson"
    assert p.fields["adult_dob"] == "1951-04-03"
    assert "\u00a3200 a week" in p.fields["disagreement_summary"]    # cp1252 escape, decoded


def test_form_written_as_html_table_is_read() -> None:
    rows = [tuple(line.split(": ", 1)) for line in FORM_LINES[1:]]
    p = parse_message(outlook_rich_text(from_html(rows)))  # type: ignore[arg-type]
    assert p.kind == "form", p.warnings
    assert p.fields["adult_name"] == "Ada Testperson"
    assert p.fields["adult_dob"] == "1951-04-03"


def test_rtf_not_written_from_html_or_text_is_a_warning() -> None:
    wordpad = b"{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Calibri;}}\\f0\\fs22 Name of adult: Ada\\par}"
    p = parse_message(outlook_rich_text(wordpad))
    assert p.kind != "form"
    assert any("not written from HTML or text" in w for w in p.warnings)
