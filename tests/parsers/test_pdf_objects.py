"""The PDF reader builds pdfplumber's page objects itself (parsers.attachments._read_objects, for
speed): they must be exactly the objects stock pdfplumber gives, or the text read from a form
could change with no test noticing (issue 12)."""

from __future__ import annotations

import io
from pathlib import Path

import pdfplumber
import pytest

from parsers.attachments import _read_objects  # the function under test
from tests.fixtures.mail.make_corpus import APPENDIX_2, make_pdf, make_table_pdf, pdf_rows

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "mail"


def _pdfs() -> list[tuple[str, bytes]]:
    found = [(p.name, p.read_bytes()) for p in sorted(CORPUS.glob("*.pdf"))]
    found.append(("made", make_pdf(pdf_rows(APPENDIX_2))))
    found.append(("table", make_table_pdf("Title", [("Name of adult", "Ada Testperson"), ("Tick", "[X] yes")])))
    return found


def _shifted_and_rotated(data: bytes) -> bytes:
    """The same pages with the MediaBox moved off the origin and the second copy turned 90°."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import RectangleObject

    writer = PdfWriter()
    for turn in (0, 90):
        for page in PdfReader(io.BytesIO(data)).pages:
            box = page.mediabox
            page.mediabox = RectangleObject([float(box.left) + 15, float(box.bottom) + 25,
                                             float(box.right) + 15, float(box.top) + 25])
            if turn:
                page.rotate(turn)
            writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize(("name", "data"), _pdfs(), ids=[n for n, _ in _pdfs()])
def test_page_objects_are_pdfplumbers_own(name: str, data: bytes) -> None:
    for pdf_bytes in (data, _shifted_and_rotated(data)):
        with pdfplumber.open(io.BytesIO(pdf_bytes)) as stock, pdfplumber.open(io.BytesIO(pdf_bytes)) as ours:
            assert len(stock.pages) == len(ours.pages)
            for theirs, mine in zip(stock.pages, ours.pages, strict=True):
                _read_objects(mine)
                assert mine.objects == theirs.objects
                assert mine.objects["char"], "a text PDF has characters"
                assert mine.extract_text() == theirs.extract_text()
                assert [t.extract() for t in mine.find_tables()] == [t.extract() for t in theirs.find_tables()]
