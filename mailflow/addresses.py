"""Recipients are people, not strings: one person per mail address, whatever its display name or
letter case ("Business Team <BT@x.org>" and "bt@x.org" are one recipient)."""

from __future__ import annotations

from collections.abc import Iterable
from email.headerregistry import Address
from email.utils import parseaddr
from functools import lru_cache


@lru_cache(maxsize=4096)   # pure, and the same few addresses recur in every notice of a sweep
def parse_address(text: str) -> Address | None:
    """`Name <user@domain>` or a bare `user@domain` as an Address (immutable, so shared); None
    when it is not one."""
    name, spec = parseaddr(text or "")
    user, at, domain = spec.rpartition("@")
    if not at or not user or "." not in domain:
        return None
    if len(user) >= 2 and user[0] == user[-1] == '"':
        user = user[1:-1]          # a quoted local part: Address quotes it again where needed
    try:
        return Address(display_name=name, username=user, domain=domain)
    except (ValueError, IndexError):
        return None


def address_of(text: str) -> str:
    """The bare address (addr-spec) in `text`, or "" when there is none."""
    parsed = parse_address(text)
    return parsed.addr_spec if parsed is not None else ""


def address_key(text: str) -> str:
    """What two spellings of one address have in common (display names and case ignored)."""
    return address_of(text).lower()


def unique_addresses(items: Iterable[str]) -> list[str]:
    """Bare addresses in first-seen order, each once (compared case-insensitively); entries that
    are not addresses are dropped."""
    seen: dict[str, str] = {}
    for item in items:
        spec = address_of(item)
        if spec and spec.lower() not in seen:
            seen[spec.lower()] = spec
    return list(seen.values())
