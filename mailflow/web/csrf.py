"""CSRF: every form carries the session's token; a POST without the right one is refused (403)
before anything else is read. SameSite=Strict cookies are the first wall, this is the second."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

FIELD = "csrf_token"


def valid(expected: str, form: Mapping[str, str]) -> bool:
    given = form.get(FIELD, "")
    return bool(expected) and bool(given) and hmac.compare_digest(given.encode(), expected.encode())
