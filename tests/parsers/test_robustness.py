"""Malformed and mutated MIME: nothing escapes parse_message; limits reject with a reason."""

from __future__ import annotations

import io
import zipfile
from email import policy
from email.message import EmailMessage
from functools import lru_cache
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers import ParseLimits, parse_message
from parsers.model import KINDS

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "mail"
SEEDS = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))]


def check(raw: bytes, limits: ParseLimits | None = None):
    p = parse_message(raw, limits)
    assert p.kind in KINDS
    if p.rejected:
        assert p.kind == "unrelated" and p.rejected.strip()
        assert any("rejected" in w for w in p.warnings)
        assert p.commands == [] and p.fields == {}
    p.to_json()  # always serialisable
    return p


def _message(subject: str = "test") -> EmailMessage:
    m = EmailMessage(policy=policy.SMTP)
    m["From"] = "Ada Testperson <ada@example.org>"
    m["To"] = "escalations@ssp.example.org"
    m["Subject"] = subject
    m["Message-ID"] = "<robust@example.org>"
    return m


@lru_cache(maxsize=1)
def zip_bomb_docx() -> bytes:
    """A .docx-looking zip whose one entry expands to 60 MB of zeros (compresses to ~60 KB)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("word/document.xml", "w", force_zip64=True) as fh:
            chunk = b"\0" * 1_000_000
            for _ in range(60):
                fh.write(chunk)
    return buf.getvalue()


@lru_cache(maxsize=1)
def encrypted_pdf() -> bytes:
    from pypdf import PdfWriter

    w = PdfWriter()
    w.add_blank_page(200, 200)
    w.encrypt("secret", algorithm="RC4-128")
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def test_docx_zip_bomb_is_rejected() -> None:
    m = _message("Escalation form")
    m.set_content("attached")
    m.add_attachment(zip_bomb_docx(), maintype="application", subtype="octet-stream",
                     filename="form.docx")
    p = check(m.as_bytes())
    assert p.rejected and ".docx" in p.rejected
    assert p.message_id == "<robust@example.org>"  # still identifiable in quarantine


def test_encrypted_pdf_is_a_warning_not_a_rejection() -> None:
    m = _message("Escalation form")
    m.set_content("attached")
    m.add_attachment(encrypted_pdf(), maintype="application", subtype="pdf", filename="f.pdf")
    p = check(m.as_bytes())
    assert p.rejected is None
    assert "encrypted PDF attachment not read" in p.warnings
    assert p.kind == "unrelated"


def test_damaged_attachments_warn() -> None:
    m = _message("Escalation form")
    m.set_content("attached")
    m.add_attachment(b"PK\x03\x04 not really a zip", maintype="application",
                     subtype="octet-stream", filename="form.docx")
    m.add_attachment(b"%PDF-1.4 garbage", maintype="application", subtype="pdf",
                     filename="form.pdf")
    m.add_attachment(b"\xd0\xcf\x11\xe0 junk", maintype="application", subtype="octet-stream",
                     filename="fwd.msg")
    m.add_attachment(b"\x78\x9f\x3e\x22 junk", maintype="application", subtype="ms-tnef",
                     filename="winmail.dat")
    p = check(m.as_bytes())
    assert p.rejected is None
    for w in ("unreadable .docx attachment", "unreadable Outlook .msg attachment",
              "unreadable winmail.dat (TNEF) attachment"):
        assert w in p.warnings
    assert any("PDF" in w for w in p.warnings)


def _nested(depth: int) -> bytes:
    inner = b"From: a@example.org\r\nSubject: leaf\r\n\r\nName of adult: Ada\r\n"
    for i in range(depth):
        inner = (b"From: a@example.org\r\nSubject: level %d\r\nMIME-Version: 1.0\r\n"
                 b"Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n"
                 b"Content-Type: message/rfc822\r\n\r\n" % (i, i, i)) + inner + b"\r\n--b%d--\r\n" % i
    return inner


def test_deep_nesting_is_rejected() -> None:
    p = check(_nested(12))
    assert p.rejected and "nesting" in p.rejected
    assert check(_nested(2)).rejected is None


def test_size_limits() -> None:
    raw = SEEDS[0]
    p = check(raw, ParseLimits(max_message_bytes=100))
    assert p.rejected and "larger than 100 bytes" in p.rejected
    docx_msg = (CORPUS / "form_outlook_docx_swindon.eml").read_bytes()
    p = check(docx_msg, ParseLimits(max_attachment_bytes=1000))
    assert p.rejected and p.rejected.startswith("attachment larger")
    p = check(docx_msg, ParseLimits(max_docx_uncompressed=1000))
    assert p.rejected and ".docx" in p.rejected


def test_huge_header_and_garbage() -> None:
    big = b"X-Junk: " + b"a" * 2_000_000 + b"\r\nSubject: " + b"=?utf-8?b?" + b"!!" * 5000 + \
        b"?=\r\nFrom: <<<@@@>>>\r\nTo: ,,,;;;\r\n\r\nbody"
    p = check(big)
    # Over the header-field bound (issue 11): rejected unread, so quarantined, never slow.
    assert p.rejected == "a header field longer than 16000 bytes"
    assert check(big.replace(b"a" * 2_000_000, b"a" * 2_000)).rejected is None
    assert check(b"").kind == "unrelated"
    assert check(b"\x00\xff" * 100).rejected is None


def test_wrong_input_type_is_a_parser_error() -> None:
    p = parse_message("not bytes")  # type: ignore[arg-type]
    assert p.rejected == "parser error: TypeError"


def _mutate(raw: bytes, ops: list[tuple[int, int, int]]) -> bytes:
    b = bytearray(raw)
    for kind, pos, val in ops:
        if not b:
            break
        i = pos % len(b)
        if kind == 0:
            b[i] = val
        elif kind == 1:
            del b[i: i + val]
        elif kind == 2:
            b[i:i] = bytes([val]) * (val % 7 + 1)
        else:
            # Break MIME structure: drop a boundary or charset, or corrupt encodings.
            for needle, repl in ((b"boundary=", b"boundary-x="), (b"charset=", b"charset=x-bogus-"),
                                 (b"base64", b"base65"), (b"--\r\n", b"\r\n"),
                                 (b"quoted-printable", b"8bit")):
                if needle in b and val % 5 == (needle[0] % 5):
                    b = bytearray(bytes(b).replace(needle, repl, 1))
            b = bytearray(bytes(b).replace(b"\r\n\r\n", b"\r\n", val % 2))
    return bytes(b)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=len(SEEDS) - 1),
       ops=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10**6), st.integers(0, 255)),
                    min_size=1, max_size=8))
def test_mutated_corpus_never_raises(seed: int, ops: list[tuple[int, int, int]]) -> None:
    check(_mutate(SEEDS[seed], ops))


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=4000))
def test_random_bytes_never_raise(data: bytes) -> None:
    check(data)


_header_names = st.sampled_from(["From", "To", "Cc", "Subject", "Date", "Message-ID",
                                 "In-Reply-To", "References", "Content-Type", "Auto-Submitted",
                                 "Authentication-Results", "Content-Transfer-Encoding"])


@settings(max_examples=80, deadline=None)
@given(headers=st.lists(st.tuples(_header_names, st.text(max_size=200)), max_size=12),
       body=st.text(max_size=2000))
def test_arbitrary_headers_and_bodies(headers: list[tuple[str, str]], body: str) -> None:
    lines = [f"{k}: {v}".replace("\r", " ").replace("\n", " ") for k, v in headers]
    raw = ("\r\n".join(lines) + "\r\n\r\n" + body).encode("utf-8", "surrogatepass")
    check(raw)
