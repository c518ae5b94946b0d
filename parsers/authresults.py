"""Lenient reading of the topmost Authentication-Results header (RFC 8601).

Exchange Online omits the authserv-id, which strict parsers reject; here any `method=result`
pair counts. Only the topmost header is read: the one the receiving system added.
"""

from __future__ import annotations

import re

METHODS = ("spf", "dkim", "dmarc", "compauth", "arc")
_COMMENT = re.compile(r"\([^()]*\)")
_PAIR = re.compile(r"(?:^|[\s;])(spf|dkim|dmarc|compauth|arc)\s*=\s*([A-Za-z]+)", re.I)


def parse_auth_results(values: list[str]) -> dict[str, str]:
    """{"spf": "pass", ...} from the first header value given; missing methods absent."""
    if not values:
        return {}
    text = str(values[0])
    for _ in range(3):  # nested comments
        text = _COMMENT.sub(" ", text)
    out: dict[str, str] = {}
    for method, result in _PAIR.findall(text):
        out.setdefault(method.lower(), result.lower())
    return out
