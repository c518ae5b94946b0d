"""Case references `PREFIX-YYYY-NNNN`, and the Message-IDs and reply tokens that carry them."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime

REFERENCE = re.compile(r"\b([A-Z][A-Z0-9]{1,9})-(\d{4})-(\d{4,})\b")


def format_reference(prefix: str, year: int, number: int) -> str:
    return f"{prefix}-{year:04d}-{number:04d}"


def is_reference(text: str) -> bool:
    return REFERENCE.fullmatch(text) is not None


def new_message_id(reference: str | None, domain: str) -> str:
    """`<SSP-2026-0007.3f9a1c2b7d5e@domain>`: maps a reply's In-Reply-To back to its case."""
    nonce = secrets.token_hex(8)
    return f"<{reference}.{nonce}@{domain}>" if reference else f"<mailflow.{nonce}@{domain}>"


@dataclass(frozen=True)
class TokenClaims:
    """What a verified reply token says. `stage` and `expires` are None for a token of the first
    format (`SSP-2026-0007.<sig>`, signed over the reference alone), still in people's mailboxes."""

    reference: str
    stage: int | None
    expires: date | None

    @property
    def legacy(self) -> bool:
        return self.stage is None


def _mac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:16]


def sign_token(reference: str, key: bytes, *, stage: int, expires: date) -> str:
    """A reply token `SSP-2026-0007.2.20270221.<sig>` for a plus-addressed Reply-To: the case,
    the stage it was sent at and the last day it may act, signed together."""
    claims = f"{reference}.{stage}.{expires:%Y%m%d}"
    return f"{claims}.{_mac(key, claims)}"


def sign_legacy_token(reference: str, key: bytes) -> str:
    """The first token format, signed over the reference alone (no stage, no expiry): no longer
    minted; kept so that such tokens can be recognised (and tested)."""
    return f"{reference}.{_mac(key, reference)}"


_TOKEN_SHAPE = re.compile(r"^(?P<ref>[A-Z][A-Z0-9]{1,9}-\d{4}-\d{4,})"
                          r"(?:\.(?P<stage>\d{1,2})\.(?P<expires>\d{8}))?\.(?P<sig>[0-9a-f]{16})$")


def read_token(token: str, key: bytes) -> TokenClaims | None:
    """The claims of a genuine token (either format), or None when it is forged or malformed.
    Whether it may still act (expiry, stage) is the caller's decision."""
    m = _TOKEN_SHAPE.match(token)
    if m is None:
        return None
    claims = token[: m.start("sig") - 1]
    if not hmac.compare_digest(_mac(key, claims), m.group("sig")):
        return None
    if m.group("stage") is None:
        return TokenClaims(m.group("ref"), None, None)
    try:
        expires = datetime.strptime(m.group("expires"), "%Y%m%d").date()
    except ValueError:
        return None
    return TokenClaims(m.group("ref"), int(m.group("stage")), expires)


def sign_message_id(message_id: str, key: bytes) -> str:
    """The `X-Mailflow-Signature` of an outgoing message: proves mailflow sent it, even after a
    relay has stripped Auto-Submitted and X-Auto-Response-Suppress."""
    return hmac.new(key, b"message-id:" + message_id.strip().encode(), hashlib.sha256).hexdigest()[:32]


def verify_message_id(message_id: str | None, signature: str | None, key: bytes) -> bool:
    if not message_id or not signature:
        return False
    return hmac.compare_digest(sign_message_id(message_id, key), signature.strip().lower())


def plus_address(address: str, token: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local}+{token}@{domain}"
