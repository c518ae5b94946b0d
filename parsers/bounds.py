"""Cheap checks on a message's headers before any parsing, so no header can make the parser slow:
how many header fields, how long one field may be (folded lines included), how many recipients.
Each check reads the bytes once (linear time); a message over a bound is rejected with the reason."""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.message import Message

from parsers.errors import LimitExceeded
from parsers.model import ParseLimits

_END_OF_HEADERS = re.compile(rb"\r?\n\r?\n")
_RECIPIENT_FIELDS = {"to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc"}
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(<[^<>\s]{1,900}>)", re.I)


def header_block(raw: bytes) -> bytes:
    """The bytes before the first blank line (all of them when there is none)."""
    end = _END_OF_HEADERS.search(raw)
    return raw if end is None else raw[: end.start()]


def check_raw_headers(raw: bytes, limits: ParseLimits) -> None:
    """Raises LimitExceeded when the top-level header section passes a bound."""
    fields: list[tuple[str, int, int]] = []      # (name, length, '@' count)
    for line in header_block(raw).split(b"\n"):
        if line[:1] in (b" ", b"\t") and fields:
            name, length, ats = fields[-1]
            fields[-1] = (name, length + len(line) + 1, ats + line.count(b"@"))
            continue
        name = line.split(b":", 1)[0].strip().lower().decode("ascii", "replace")
        fields.append((name, len(line) + 1, line.count(b"@")))
        if len(fields) > limits.max_header_count:
            raise LimitExceeded(f"more than {limits.max_header_count} header fields")
    _check_fields(fields, limits)


def check_header_items(msg: Message, limits: ParseLimits) -> None:
    """The same bounds on an already split message (a forwarded one) before its headers are read."""
    try:
        items = list(msg.raw_items())  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001
        items = list(getattr(msg, "_headers", []))
    if len(items) > limits.max_header_count:
        raise LimitExceeded(f"more than {limits.max_header_count} header fields")
    _check_fields(((str(k).lower(), len(k) + len(str(v)) + 2, str(v).count("@")) for k, v in items),
                  limits)


def _check_fields(fields: Iterable[tuple[str, int, int]], limits: ParseLimits) -> None:
    recipients = 0
    for name, length, ats in fields:
        if length > limits.max_header_bytes:
            raise LimitExceeded(f"a header field longer than {limits.max_header_bytes} bytes")
        if name in _RECIPIENT_FIELDS:
            recipients += ats
    if recipients > limits.max_recipients:
        raise LimitExceeded(f"more than {limits.max_recipients} recipients")


def message_id_of(raw: bytes) -> str | None:
    """The Message-ID read from the raw header lines (for a message rejected before parsing)."""
    for line in header_block(raw).split(b"\n"):
        found = _MESSAGE_ID.match(line.strip())
        if found:
            return found.group(1).decode("ascii", "replace")
    return None
