"""A test-only parser that hangs on a marked message (run inside the parse worker process)."""

from __future__ import annotations

import threading

from parsers import ParsedMessage, ParseLimits, parse_message

HANG_MARKER = b"X-Test-Parser: hang"


def parse_or_hang(raw: bytes, limits: ParseLimits) -> ParsedMessage:
    if HANG_MARKER in raw:
        threading.Event().wait()      # never returns: only the time limit ends it
    return parse_message(raw, limits)
