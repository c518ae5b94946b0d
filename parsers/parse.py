"""parse_message: normalise, classify, find the case, extract commands and form fields."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from email.message import Message
from typing import Any

from parsers import proforma
from parsers.attachments import quiet_libraries
from parsers.authresults import parse_auth_results
from parsers.bounds import check_parts, check_raw_headers, check_raw_parts, check_raw_report, message_id_of
from parsers.classify import classify_automated
from parsers.errors import LimitExceeded
from parsers.message import Mail, fill_headers, forget_parsed_headers, normalise, parse_bytes
from parsers.model import Command, ParsedMessage, ParseLimits
from parsers.replies import (
    bounded_text,
    case_from_thread,
    extract_commands,
    new_text_of,
    ref_from_msgid,
    ref_from_subject,
    token_from_addresses,
)
from parsers.values import EMAIL_RE

log = logging.getLogger(__name__)

# An inline forward: a marker line, then the forwarded header block with From within 4 lines.
# Matched line by line (linear time); the old single pattern's `(?:.*\n){0,3}?` backtracked.
_INLINE_FWD_MARKER = re.compile(
    r"^[ \t>]*(?:-{2,}[ \t]*(?:Forwarded message|Original Message)[ \t]*-{2,}"
    r"|Begin forwarded message:|_{10,})[ \t]*$",
    re.I,
)
_INLINE_FWD_FROM = re.compile(r"^[ \t>]*\*?From:\*?[ \t]*(.+)$", re.I)
# The lookbehind starts a match only where a run of address characters starts: linear time.

def parse_message(raw: bytes, limits: ParseLimits | None = None) -> ParsedMessage:
    """Classify and extract one raw RFC 5322 message. Never raises."""
    pm = ParsedMessage()
    limits = limits or ParseLimits()
    try:
        pm.sha256 = hashlib.sha256(raw).hexdigest()
        forget_parsed_headers()
        with quiet_libraries():
            _parse(raw, limits, pm)
    except LimitExceeded as exc:
        _reject(pm, str(exc))
    except RecursionError:
        _reject(pm, f"nesting deeper than {limits.max_depth} levels")
    except Exception as exc:  # noqa: BLE001 - the contract: never raise, quarantine instead
        # The type only: exception texts can carry message content.
        log.debug("parser error on %s: %s", pm.message_id, type(exc).__name__)
        _reject(pm, f"parser error: {type(exc).__name__}")
    pm.warnings = list(dict.fromkeys(pm.warnings))
    _no_surrogates(pm)
    return pm


def _no_surrogates(pm: ParsedMessage) -> None:
    """Undecodable header bytes come through the stdlib as lone surrogates, which no database or
    mail can store: each becomes U+FFFD."""
    for f in dataclasses.fields(pm):
        value = getattr(pm, f.name)
        cleaned = _clean(value)
        if cleaned is not value:
            setattr(pm, f.name, cleaned)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        if value.isascii():
            return value
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if isinstance(value, list):
        items = [_clean(v) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if isinstance(value, dict):
        pairs = {_clean(k): _clean(v) for k, v in value.items()}
        same = list(pairs) == list(value) and all(pairs[k] is value[k] for k in value)
        return value if same else pairs
    if isinstance(value, Command):
        name, text = _clean(value.name), _clean(value.text)
        if name is value.name and text is value.text:
            return value
        return dataclasses.replace(value, name=name, text=text)
    return value


def _reject(pm: ParsedMessage, reason: str) -> None:
    pm.kind = "unrelated"
    pm.rejected = reason
    pm.commands = []
    pm.fields = {}
    pm.missing = []
    pm.warnings.append(f"rejected: {reason}")


def _parse(raw: bytes, limits: ParseLimits, pm: ParsedMessage) -> None:
    if len(raw) > limits.max_message_bytes:
        raise LimitExceeded(f"message larger than {limits.max_message_bytes} bytes ({len(raw)})")
    try:
        check_raw_headers(raw, limits)
        check_raw_parts(raw, limits)
        check_raw_report(raw)
    except LimitExceeded:
        pm.message_id = message_id_of(raw)   # still identifiable in quarantine
        raise
    msg = parse_bytes(raw)
    check_parts(msg, limits)
    # Headers first, so a later limit still leaves the message identifiable in quarantine.
    m = Mail(msg=msg)
    fill_headers(m, raw)
    _copy_headers(m, pm)
    normalise(msg, limits, raw=raw, mail=m)
    pm.warnings.extend(_defect_warnings(msg))
    pm.auth = parse_auth_results(m.headers("Authentication-Results"))
    pm.attachments = [a.filename or a.content_type for a in m.attachments]
    pm.full_text = m.body_text.strip()
    pm.forwards = [{"from": f.from_addr, "subject": f.subject, "message_id": f.message_id,
                    "date": f.date.isoformat() if f.date else None,
                    "attachments": [a.filename or a.content_type for a in f.attachments]}
                   for f in m.forwards]
    _collect_warnings(m, pm)

    verdict = classify_automated(m)
    pm.automated = verdict.automated
    pm.warnings.extend(verdict.warnings)
    if verdict.kind == "bounce":
        pm.kind = "bounce"
        pm.bounced_message_id = verdict.bounced_message_id
        pm.bounced_recipients = verdict.bounced_recipients
        ref = ref_from_msgid(verdict.bounced_message_id)
        if ref:
            pm.case_ref, pm.case_ref_source = ref, "thread"
        pm.new_text = pm.full_text
        return

    _find_case(m, pm)
    if verdict.kind is not None:
        pm.kind = verdict.kind
        pm.new_text = pm.full_text
        return

    if pm.case_ref and not pm.automated:
        pm.kind = "reply"
        new_text, warns = new_text_of(m.text, m.html, limits.max_reply_text_chars)
        pm.new_text = new_text
        pm.warnings.extend(warns)
        pm.commands, cwarns = extract_commands(new_text)
        pm.warnings.extend(cwarns)
        ex = _extract(new_text, limits, pm.warnings)
        # A form attached to the reply (e.g. the Stage 2 template) is new content too.
        for a in m.attachments:
            if a.text.strip():
                proforma.merge(ex, _extract(a.text, limits, pm.warnings), f"attachment {a.filename}")
        pm.fields = ex.fields
        pm.extra_fields = ex.extra
        pm.warnings.extend(ex.warnings)
        return

    ex = _extract_form(m, limits, pm.warnings)
    pm.new_text = pm.full_text
    if not pm.automated and proforma.looks_like_form(ex):
        pm.kind = "form"
        pm.form = ex.form
        pm.fields = ex.fields
        pm.extra_fields = ex.extra
        pm.warnings.extend(ex.warnings)
        if "raiser_email" not in pm.fields:
            sender = _original_sender(m) or m.from_addr
            if sender:
                pm.fields["raiser_email"] = sender
                pm.warnings.append("raiser_email not on the form: taken from the sender address")
        pm.missing = proforma.missing_fields(pm.fields)
        return
    pm.kind = "unrelated"


def _copy_headers(m: Mail, pm: ParsedMessage) -> None:
    pm.message_id = m.message_id
    pm.in_reply_to = m.in_reply_to
    pm.references = list(m.references)
    pm.subject = m.subject
    pm.from_addr = m.from_addr
    pm.from_name = m.from_name
    pm.sender_problem = m.sender_problem
    pm.to = list(m.to)
    pm.cc = list(m.cc)
    pm.reply_to = list(m.reply_to)
    pm.date = m.date
    pm.return_path = m.return_path
    pm.mailflow_signature = m.header("X-Mailflow-Signature")


def _collect_warnings(m: Mail, pm: ParsedMessage) -> None:
    for w in m.warnings:
        if w not in pm.warnings:
            pm.warnings.append(w)
    for f in m.forwards:
        _collect_warnings(f, pm)


def _defect_warnings(msg: Message) -> list[str]:
    names: list[str] = []
    for part in msg.walk():
        for d in getattr(part, "defects", []) or []:
            n = type(d).__name__
            if n not in names:
                names.append(n)
    return [f"MIME defects: {', '.join(names)}"] if names else []


def _find_case(m: Mail, pm: ParsedMessage) -> None:
    ref = case_from_thread(m.in_reply_to, m.references)
    if ref:
        pm.case_ref, pm.case_ref_source = ref, "thread"
    tok = token_from_addresses([*m.to, *m.cc, *m.envelope_to])
    if tok:
        pm.reply_token = tok[0]
        if not pm.case_ref:
            pm.case_ref, pm.case_ref_source = tok[1], "token"
    if not pm.case_ref:
        ref = ref_from_subject(m.subject)
        if ref:
            pm.case_ref, pm.case_ref_source = ref, "subject"


def _sources(m: Mail, out: list[tuple[str, str]]) -> None:
    if m.text.strip():
        out.append(("body", m.text))
    # Render HTML only when the plain part is missing or cannot hold the form (tables, boxes).
    if m.html and (not m.text.strip() or re.search(r"<(?:table|input)\b", m.html, re.I)):
        out.append(("body", m.html_text))
    for a in m.attachments:
        if a.text.strip():
            out.append((f"attachment {a.filename or a.content_type}", a.text))
    for f in m.forwards:
        _sources(f, out)


def _extract(text: str, limits: ParseLimits, warnings: list[str]) -> proforma.Extraction:
    """Form extraction on at most max_form_text_chars of the text (a form is at its start)."""
    text, cut = bounded_text(text, limits.max_form_text_chars, max_line=limits.max_form_text_chars)
    if cut:
        warnings.append(f"text cut to {limits.max_form_text_chars} characters for form extraction")
    return proforma.extract_best(text)


def _extract_form(m: Mail, limits: ParseLimits, warnings: list[str]) -> proforma.Extraction:
    sources: list[tuple[str, str]] = []
    _sources(m, sources)
    results = [(name, _extract(text, limits, warnings)) for name, text in sources]
    results = [r for r in results if r[1].fields or r[1].extra]
    if not results:
        return proforma.Extraction()
    results.sort(key=lambda r: r[1].score + (2 if r[1].marker else 0), reverse=True)
    first_name, best = results[0]
    out = proforma.Extraction(form=best.form, fields=dict(best.fields), extra=dict(best.extra),
                           warnings=list(best.warnings), marker=best.marker)
    for name, ex in results[1:]:
        proforma.merge(out, ex, name, warn=name != first_name)
    return out


def _original_sender(m: Mail) -> str | None:
    """The author of a forwarded form: the attached message's From, else an inline forward's."""
    for f in m.forwards:
        if f.from_addr:
            return f.from_addr
    lines = m.body_text.splitlines()
    for i, line in enumerate(lines):
        if not _INLINE_FWD_MARKER.match(line):
            continue
        for following in lines[i + 1:i + 5]:
            found = _INLINE_FWD_FROM.match(following)
            if found:
                e = EMAIL_RE.search(found.group(1))
                return e.group(0).lower() if e else None
    return None
