"""Case references `PREFIX-YYYY-NNNN`, and the Message-IDs and reply tokens that carry them."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

REFERENCE = re.compile(r"\b([A-Z][A-Z0-9]{1,9})-(\d{4})-(\d{4,})\b")


def format_reference(prefix: str, year: int, number: int) -> str:
    return f"{prefix}-{year:04d}-{number:04d}"


def is_reference(text: str) -> bool:
    return REFERENCE.fullmatch(text) is not None


def new_message_id(reference: str | None, domain: str) -> str:
    """`<SSP-2026-0007.3f9a1c2b7d5e@domain>`: maps a reply's In-Reply-To back to its case."""
    nonce = secrets.token_hex(8)
    return f"<{reference}.{nonce}@{domain}>" if reference else f"<mailflow.{nonce}@{domain}>"


def sign_token(reference: str, key: bytes) -> str:
    """A reply token `SSP-2026-0007.<sig>` for a plus-addressed Reply-To."""
    sig = hmac.new(key, reference.encode(), hashlib.sha256).hexdigest()[:16]
    return f"{reference}.{sig}"


def verify_token(token: str, key: bytes) -> str | None:
    """The case reference a token was signed for, or None when it is forged or malformed."""
    reference, _, _sig = token.rpartition(".")
    if not is_reference(reference):
        return None
    return reference if hmac.compare_digest(sign_token(reference, key), token) else None


def plus_address(address: str, token: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local}+{token}@{domain}"
