"""Parse throughput per format, and the ratio to a bare stdlib parse of the same bytes
(`email.message_from_bytes(raw, policy.default)` + `get_body()`, as bench_ingest measures it).

Run: .venv/bin/python -m bench.bench_parse   (about 20 s)
"""

from __future__ import annotations

import email
import time
from email import policy
from pathlib import Path

from bench.results import record
from parsers import parse_message

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "mail"
# format -> corpus messages of that format
FORMATS = {
    "form: body text": ["form_gmail_text_generic", "form_apple_text_appendix2", "form_cp1252_qp"],
    "form: HTML table": ["form_outlook_html_table_swindon", "form_owa_html_strike_swindon",
                         "form_gmail_html_base64_checkbox"],
    "form: .docx": ["form_outlook_docx_swindon", "form_gmail_docx_paragraphs_generic"],
    "form: PDF": ["form_outlook_pdf_swindon", "form_apple_pdf_appendix2",
                  "form_outlook_table_pdf_swindon"],
    "form: forwarded": ["fwd_rfc822_docx_swindon", "fwd_inline_gmail_generic"],
    "reply": ["reply_outlook_resolved", "reply_owa_extend", "reply_gmail_urgent",
              "reply_apple_note"],
    "auto-reply / bounce": ["ooo_exchange", "ooo_gmail_vacation", "bounce_exchange_ndr",
                            "bounce_postfix_dsn"],
    "unrelated": ["newsletter_list", "unrelated_personal"],
}
BUDGET_S = 1.2  # per format and per side


def _rate(fn, messages: list[bytes]) -> float:
    n = 0
    start = time.perf_counter()
    while True:
        for raw in messages:
            fn(raw)
            n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= BUDGET_S or n >= 20000:
            return n / elapsed


def _bare(raw: bytes) -> None:
    email.message_from_bytes(raw, policy=policy.default).get_body()


def main() -> None:
    print("parse benchmark (messages per second; ratio = bare email.message_from_bytes / "
          "parse_message)")
    print(f"{'format':24} {'parse msg/s':>12} {'bare msg/s':>12} {'ratio':>8} {'avg KB':>8}")
    for name, files in FORMATS.items():
        messages = [(CORPUS / f"{f}.eml").read_bytes() for f in files]
        for raw in messages:  # warm caches (form definitions, imports)
            parse_message(raw)
        ours = _rate(parse_message, messages)
        bare = _rate(_bare, messages)
        size = sum(map(len, messages)) / len(messages) / 1024
        print(f"{name:24} {ours:12.0f} {bare:12.0f} {bare / ours:7.1f}x {size:8.1f}")
        record("Parse", f"{name}: parse_message vs bare parse", ours, "msg/s", ratio=ours / bare,
               note=f"bare {bare:.0f} msg/s; {len(files)} corpus messages, {size:.1f} KB on average; "
                    f"{BUDGET_S} s per side")


if __name__ == "__main__":
    main()
