"""When a message reached its mailbox, by the message's own headers: the date the receiving server
stamped on the topmost `Received:` line ("...; Thu, 3 Dec 2026 14:15:04 +0000"). For mail that comes
with nothing better (a loose .eml file saved or exported from a mail client); the `Date:` header is
the sender's to write and is not used. Pure, and bounded: only the header block is read."""

from __future__ import annotations

from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parsedate_to_datetime

_HEADER_BYTES = 256 * 1024   # a header block larger than this is not searched (None)


def received_stamp(raw: bytes) -> datetime | None:
    """The topmost Received line's date as an aware UTC time; None when there is none or it is unreadable."""
    end = raw.find(b"\n\n", 0, _HEADER_BYTES)
    crlf = raw.find(b"\r\n\r\n", 0, _HEADER_BYTES)
    ends = [i for i in (end, crlf) if i != -1]
    if not ends:
        return None
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw[:min(ends) + 2])
    first = headers.get("Received")
    if first is None or ";" not in str(first):
        return None
    try:
        stamped = parsedate_to_datetime(" ".join(str(first).rsplit(";", 1)[1].split()))
    except (TypeError, ValueError, IndexError):
        return None
    return stamped.astimezone(UTC) if stamped.tzinfo is not None else stamped.replace(tzinfo=UTC)
