"""Who sent a message: the single address in its From header, or the reason there is none.

Only the parsed address counts, never text found elsewhere in the header (display names, comments,
a second address). The stdlib's header registry (policy.default) parses the header; the older
`email.utils.getaddresses` (strict where the Python has it) must read the same single address, or
the header is ambiguous. A message without exactly one From header holding exactly one mailbox
cannot act on a case, whatever its Sender header says (RFC 5322 section 3.6.2: From is required and
names the author).
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from email import policy
from email.message import Message


@dataclass(frozen=True)
class Author:
    address: str | None = None      # lower-cased addr-spec; None when there is no single one
    name: str | None = None         # the display name (for display only, never for checks)
    problem: str | None = None      # why there is no single unambiguous address


def author_of(msg: Message) -> Author:
    values = [v for k, v in _raw_items(msg) if k.lower() == "from"]
    if not values:
        return Author(problem="no From header")
    if len(values) > 1:
        return Author(problem="more than one From header")
    raw = _as_text(values[0])
    if not raw.strip():
        return Author(problem="an empty From header")
    try:
        header = policy.default.header_factory("From", raw)
        groups = list(header.groups)
        defects = list(header.defects)
    except Exception:  # noqa: BLE001 - the registry fails on some malformed headers
        return Author(problem="an unreadable From header")
    if any(g.display_name is not None for g in groups):
        return Author(problem="group syntax in the From header")
    addresses = [a for g in groups for a in g.addresses]
    if len(addresses) != 1:
        return Author(problem=f"{len(addresses) or 'no'} addresses in the From header")
    if defects:
        return Author(problem="a malformed From header")
    addr = addresses[0]
    if not addr.username or not addr.domain or any(c.isspace() or ord(c) < 32 for c in addr.domain):
        return Author(problem="no usable address in the From header")
    if not _same_single_address(raw, addr.username, addr.domain):
        return Author(problem="an ambiguous From header")
    return Author(address=addr.addr_spec.lower(), name=addr.display_name or None)


def _same_single_address(raw: str, username: str, domain: str) -> bool:
    """The cross-check: getaddresses must also find one address, the same one."""
    try:
        found = email.utils.getaddresses([raw], strict=True)
    except TypeError:   # Pythons before the strict parser (3.11.10 / 3.12.5)
        found = email.utils.getaddresses([raw])
    found = [(n, a) for n, a in found if n or a]
    if len(found) != 1 or "@" not in found[0][1]:
        return False
    local, _, dom = found[0][1].rpartition("@")
    if len(local) >= 2 and local.startswith('"') and local.endswith('"'):
        local = local[1:-1]
    return local == username and dom.lower() == domain.lower()


def _raw_items(msg: Message) -> list[tuple[str, object]]:
    try:
        return list(msg.raw_items())
    except Exception:  # noqa: BLE001
        return list(getattr(msg, "_headers", []))


def _as_text(value: object) -> str:
    """The header's raw text, unfolded; 8-bit bytes (RFC 6532 UTF-8 headers) decoded as UTF-8."""
    text = str(value).replace("\r", "").replace("\n", "")
    try:
        return text.encode("ascii", "surrogateescape").decode("utf-8")
    except UnicodeError:
        return text
