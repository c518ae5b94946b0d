"""Cheap checks on a message's headers before any parsing, so no header can make the parser slow:
how many header fields, how long one field may be (folded lines included), how many recipients.
Each check reads the bytes once (linear time); a message over a bound is rejected with the reason."""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.message import Message

from parsers.errors import LimitExceeded
from parsers.model import ParseLimits

# Line ends as the stdlib's feedparser reads them: CRLF, CR or LF.
_EOL = rb"(?:\r\n|\r(?!\n)|\n)"
_END_OF_HEADERS = re.compile(_EOL + _EOL)
_LINES = re.compile(rb"\r\n|\r|\n")
_RECIPIENT_FIELDS = {"to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc"}
# Read with linear parsers (email.utils.getaddresses, a message-id pattern), never the registry.
_LIST_FIELDS = _RECIPIENT_FIELDS | {"reply-to", "references", "in-reply-to", "delivered-to", "x-original-to",
                                    "envelope-to"}
_BOUNDARY = re.compile(rb'boundary[ \t]*=[ \t]*"?([^";\r\n]{1,200})', re.I)
_MAX_BOUNDARIES = 24   # each open boundary is tested against every later line
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(<[^<>\s]{1,900}>)", re.I)


def header_block(raw: bytes) -> bytes:
    """The bytes before the first blank line (all of them when there is none)."""
    end = _END_OF_HEADERS.search(raw)
    return raw if end is None else raw[: end.start()]


def check_raw_headers(raw: bytes, limits: ParseLimits) -> None:
    """Raises LimitExceeded when the top-level header section passes a bound."""
    fields: list[tuple[str, int, int]] = []      # (name, length, '@' count)
    for line in _LINES.split(header_block(raw)):
        if line[:1] in (b" ", b"\t") and fields:
            name, length, ats = fields[-1]
            fields[-1] = (name, length + len(line) + 1, ats + line.count(b"@"))
            continue
        name = line.split(b":", 1)[0].strip().lower().decode("ascii", "replace")
        fields.append((name, len(line) + 1, line.count(b"@")))
        if len(fields) > limits.max_header_count:
            raise LimitExceeded(f"more than {limits.max_header_count} header fields")
    _check_fields(fields, limits)


def check_raw_parts(raw: bytes, limits: ParseLimits) -> None:
    """The number of MIME parts, counted on the bytes: the stdlib's parser spends about a
    millisecond on each part, so 5,000 empty parts would cost seconds before anything is read."""
    boundaries: set[bytes] = set()
    for found in _BOUNDARY.finditer(raw):
        boundaries.add(found.group(1).strip())
        if len(boundaries) > _MAX_BOUNDARIES:
            raise LimitExceeded(f"more than {_MAX_BOUNDARIES} multipart boundaries")
    if sum(raw.count(b"--" + b) for b in boundaries if b) > limits.max_parts * 2 + 2 * len(boundaries):
        raise LimitExceeded(f"more than {limits.max_parts} MIME parts")


_DSN = re.compile(rb"message/delivery-status", re.I)
_BLANK_LINE = re.compile(rb"\n\r?\n")
MAX_DSN_BLOCKS = 10_000


def check_raw_report(raw: bytes) -> None:
    """The stdlib parses a message/delivery-status part into one message per blank-line-separated
    block: 150,000 blank lines in a bounce took over 30 s. A real report has a handful of blocks."""
    if _DSN.search(raw) and len(_BLANK_LINE.findall(raw)) > MAX_DSN_BLOCKS:
        raise LimitExceeded(f"a delivery report with more than {MAX_DSN_BLOCKS} blank lines")


def check_header_items(msg: Message, limits: ParseLimits) -> None:
    """The same bounds on an already split message (a forwarded one) before its headers are read."""
    try:
        items = list(msg.raw_items())
    except Exception:  # noqa: BLE001
        items = list(getattr(msg, "_headers", []))
    if len(items) > limits.max_header_count:
        raise LimitExceeded(f"more than {limits.max_header_count} header fields")
    _check_fields(((str(k).lower(), len(k) + len(str(v)) + 2, str(v).count("@")) for k, v in items),
                  limits)


def _check_fields(fields: Iterable[tuple[str, int, int]], limits: ParseLimits) -> None:
    recipients = lists = 0
    for name, length, ats in fields:
        if name in _LIST_FIELDS:
            lists += length     # all of them together: 175 lists of 94 KB each cost 80 s to read
            if lists > limits.max_address_list_bytes:
                raise LimitExceeded(f"address lists longer than {limits.max_address_list_bytes} bytes")
        elif length > limits.max_header_bytes:
            raise LimitExceeded(f"a header field longer than {limits.max_header_bytes} bytes")
        if name in _RECIPIENT_FIELDS:
            recipients += ats
    if recipients > limits.max_recipients:
        raise LimitExceeded(f"more than {limits.max_recipients} recipients")


def check_parts(msg: Message, limits: ParseLimits) -> None:
    """Every part's (and forwarded message's) headers, and the number of parts, before any is read."""
    for count, part in enumerate(msg.walk(), start=1):
        if count > limits.max_parts:
            raise LimitExceeded(f"more than {limits.max_parts} MIME parts")
        check_header_items(part, limits)


def message_id_of(raw: bytes) -> str | None:
    """The Message-ID read from the raw header lines (for a message rejected before parsing)."""
    for line in _LINES.split(header_block(raw)):
        found = _MESSAGE_ID.match(line.strip())
        if found:
            return found.group(1).decode("ascii", "replace")
    return None
