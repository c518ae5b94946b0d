"""No personal data in logs at any verbosity (issue 11, item 8, the parser side): the document
libraries (pdfminer, pdfplumber, pypdf, python-docx, extract-msg, olefile, tnefparse) log
fragments of the documents they read; nothing of theirs reaches a handler, even with the root
logger (and their own loggers) at DEBUG."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from parsers import parse_message
from parsers.attachments import _CHATTY

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "mail"


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("name", ["form_owa_pdf_swindon.eml", "form_outlook_docx_swindon.eml",
                                  "form_outlook_tnef_docx_swindon.eml", "form_gmail_pdf_generic.eml"])
def test_document_libraries_log_nothing_even_at_debug(name: str) -> None:
    collect = _Collect()
    root = logging.getLogger()
    saved = root.level
    root.addHandler(collect)
    root.setLevel(logging.DEBUG)
    for lib in ("pdfminer", "pdfminer.psparser", "docx", "extract_msg"):   # as `-vv` might
        logging.getLogger(lib).setLevel(logging.DEBUG)
    try:
        parsed = parse_message((CORPUS / name).read_bytes())
    finally:
        root.removeHandler(collect)
        root.setLevel(saved)
    assert parsed.rejected is None and parsed.kind == "form"
    leaked = [r for r in collect.records if r.name.split(".")[0] in _CHATTY]
    assert leaked == [], sorted({r.name for r in leaked})
