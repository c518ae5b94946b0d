"""MIME normalisation: stdlib `email` (policy.default) for structure, bodies and headers.

mail-parser is the fallback reader when the stdlib cannot parse the message at all or a header
it needs (its compat32-based decoding is more lenient); forwarded `message/rfc822` parts are kept
as separate messages (mail-parser would merge them into the body).
"""

from __future__ import annotations

import codecs
import email
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from functools import lru_cache

from parsers import attachments as att
from parsers.bounds import check_header_items
from parsers.errors import LimitExceeded
from parsers.header_classes import HeaderClasses
from parsers.htmltext import html_to_text
from parsers.model import ParseLimits
from parsers.sender import author_of

_MSGID = re.compile(r"<[^<>\s]+>")


@dataclass
class Attachment:
    filename: str
    content_type: str
    size: int
    text: str = ""           # extracted text (docx, pdf, txt); empty when none
    kind: str = "other"      # docx | pdf | text | msg | tnef | other


@dataclass
class Mail:
    """One message (the outer one or a forwarded one), normalised."""

    msg: Message
    depth: int = 0
    subject: str = ""
    from_addr: str | None = None
    from_name: str | None = None
    sender_problem: str | None = None   # why From names no single address (then it cannot act)
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    reply_to: list[str] = field(default_factory=list)
    envelope_to: list[str] = field(default_factory=list)  # Delivered-To, X-Original-To, Envelope-To
    date: datetime | None = None
    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    return_path: str | None = None
    text: str = ""                  # text/plain body parts joined
    html: str = ""                  # text/html body parts joined (raw)
    attachments: list[Attachment] = field(default_factory=list)
    forwards: list[Mail] = field(default_factory=list)
    delivery_status: list[str] = field(default_factory=list)   # message/delivery-status texts
    rfc822_headers: list[str] = field(default_factory=list)    # text/rfc822-headers texts
    warnings: list[str] = field(default_factory=list)
    _html_text: str | None = None

    @property
    def html_text(self) -> str:
        if self._html_text is None:
            self._html_text = html_to_text(self.html) if self.html else ""
        return self._html_text

    @property
    def body_text(self) -> str:
        """The plain part, else the HTML part rendered to text."""
        return self.text if self.text.strip() else self.html_text

    def header(self, name: str) -> str | None:
        return header_str(self.msg, name)

    def headers(self, name: str) -> list[str]:
        try:
            return [str(v) for v in (self.msg.get_all(name) or [])]
        except Exception:  # noqa: BLE001
            return [str(v) for k, v in _raw_items(self.msg) if k.lower() == name.lower()]


def _raw_items(msg: Message) -> list[tuple[str, str]]:
    try:
        return [(k, str(v)) for k, v in msg.raw_items()]
    except Exception:  # noqa: BLE001
        return list(getattr(msg, "_headers", []))


def header_str(msg: Message, name: str) -> str | None:
    """A header's decoded value; the raw value when the structured parse fails."""
    try:
        v = msg.get(name)
        return None if v is None else str(v)
    except Exception:  # noqa: BLE001 - malformed header: fall back to the raw text
        for k, v in _raw_items(msg):
            if k.lower() == name.lower():
                return str(v)
    return None


def raw_header(msg: Message, name: str) -> str | None:
    """A header's raw value, unfolded, without the structured parse (for linear readers)."""
    for k, v in _raw_items(msg):
        if k.lower() == name.lower():
            return str(v).replace("\r", "").replace("\n", "")
    return None


def _addresses(msg: Message, name: str, trouble: list[str] | None = None
               ) -> list[tuple[str, str]]:
    """Recipient lists, read with the stdlib's linear getaddresses (the header registry is
    quadratic in the header's length); only the addresses are used."""
    raw = [str(v).replace("\r", "").replace("\n", "") for k, v in _raw_items(msg) if k.lower() == name.lower()]
    try:
        out = getaddresses(raw)
    except RecursionError:  # deeply nested comments
        if trouble is not None:
            trouble.append(name)
        return []
    return [(n, a.strip().strip("<>")) for n, a in out if a and "@" in a]


def _msgids(value: str | None) -> list[str]:
    return _MSGID.findall(value or "")


def decode_part(part: Message) -> str:
    """A text part's content in any charset, with \n line ends (never raises)."""
    return _decode_part(part).replace("\r\n", "\n").replace("\r", "\n")


def _decode_part(part: Message) -> str:
    """Declared charset, else UTF-8, else cp1252."""
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001
        data = None
    if data is None:
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    if not isinstance(data, bytes):
        return str(data)
    charset = (part.get_content_charset() or "").strip().lower() or None
    if charset:
        try:
            codecs.lookup(charset)
        except LookupError:
            charset = None
    if charset and charset not in ("us-ascii", "ascii"):
        try:
            return data.decode(charset)
        except (UnicodeDecodeError, LookupError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _filename(part: Message) -> str:
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001
        name = None
    return (name or "").strip()


def _is_attachment(part: Message) -> bool:
    try:
        disp = (part.get_content_disposition() or "").lower()
    except Exception:  # noqa: BLE001
        disp = ""
    return disp == "attachment" or (disp != "inline" and bool(_filename(part)))


class _ParsedHeaderCache(policy.EmailPolicy):
    """policy.default, except that a header value once parsed is not parsed again. The stdlib
    builds a new header object (a full structured parse) on every `msg.get()`, and every
    `get_content_type()`, `get_filename()` and `get_content_charset()` is one: a message's
    Content-Type was parsed dozens of times. Header objects are immutable, so one parse of a given
    (name, value) can be shared; the cache is bounded, failures are not cached (they raise again).
    parse_message empties it before each message (`forget_parsed_headers`): one message's headers
    never outlive it, and no message is faster for the one before."""

    def header_fetch_parse(self, name, value):  # type: ignore[no-untyped-def]
        if hasattr(value, "name"):
            return value
        return _parsed_header(self.header_factory, name, value)


@lru_cache(maxsize=2048)
def _parsed_header(factory, name: str, value: str):  # type: ignore[no-untyped-def]
    return factory(name, "".join(_LINESEP.split(value)))


def forget_parsed_headers() -> None:
    _parsed_header.cache_clear()


_LINESEP = re.compile(r"\n|\r")   # what policy.EmailPolicy strips from a stored value
PARSE_POLICY = _ParsedHeaderCache(header_factory=HeaderClasses())


def parse_bytes(raw: bytes) -> Message:
    """The stdlib parse with policy.default, header parses cached (never raises on content; may on
    pathological input)."""
    return email.message_from_bytes(raw, policy=PARSE_POLICY)


def normalise(msg: Message, limits: ParseLimits, depth: int = 0, raw: bytes | None = None,
              mail: Mail | None = None) -> Mail:
    """Headers, bodies, attachments and forwards of one message (headers kept if `mail` given)."""
    if depth > limits.max_depth:
        raise LimitExceeded(f"nesting deeper than {limits.max_depth} levels")
    m = mail
    if m is None:
        check_header_items(msg, limits)   # a forwarded message: bound its headers before reading them
        m = Mail(msg=msg, depth=depth)
        fill_headers(m, raw)
    texts: list[str] = []
    htmls: list[str] = []
    _walk(msg, m, limits, depth, texts, htmls, level=0)
    m.text = "\n\n".join(t for t in texts if t.strip())
    m.html = "\n".join(htmls)
    return m


def fill_headers(m: Mail, raw: bytes | None = None) -> None:
    msg = m.msg
    trouble: list[str] = []
    m.subject = " ".join((header_str(msg, "Subject") or "").split())
    author = author_of(msg)
    m.from_addr, m.from_name, m.sender_problem = author.address, author.name, author.problem
    if author.problem:
        m.warnings.append(f"no single sender address: {author.problem}")
    m.to = [a.lower() for _, a in _addresses(msg, "To", trouble)]
    m.cc = [a.lower() for _, a in _addresses(msg, "Cc", trouble)]
    m.reply_to = [a.lower() for _, a in _addresses(msg, "Reply-To", trouble)]
    for h in ("Delivered-To", "X-Original-To", "Envelope-To"):
        m.envelope_to.extend(a.lower() for _, a in _addresses(msg, h))
    ids = _msgids(raw_header(msg, "Message-ID"))
    m.message_id = ids[0] if ids else None
    irt = _msgids(raw_header(msg, "In-Reply-To"))
    m.in_reply_to = irt[0] if irt else None
    m.references = _msgids(raw_header(msg, "References"))
    rp = header_str(msg, "Return-Path")
    if rp is not None:
        rp = rp.strip()
        m.return_path = rp.strip("<>").strip().lower()
    raw_date = header_str(msg, "Date")
    if raw_date:
        try:
            m.date = parsedate_to_datetime(raw_date)
        except (TypeError, ValueError, IndexError):
            m.warnings.append("unreadable Date header")
    if trouble and raw is not None:
        _mailparser_headers(m, raw)


def _mailparser_headers(m: Mail, raw: bytes) -> None:
    """mail-parser's lenient (compat32) header decoding, for headers the stdlib choked on."""
    try:
        import mailparser

        mp = mailparser.parse_from_bytes(raw)
        # Recipients only: the sender is never guessed (parsers.sender).
        for attr, key in (("to", "to"), ("cc", "cc"), ("reply_to", "reply_to")):
            addrs = [a.lower() for _, a in (getattr(mp, key) or []) if a and "@" in a]
            if addrs:
                setattr(m, attr, addrs)
        m.warnings.append("malformed address headers read leniently")
    except Exception:  # noqa: BLE001 - keep the stdlib's best effort
        m.warnings.append("malformed address headers")


def _walk(part: Message, m: Mail, limits: ParseLimits, depth: int,
          texts: list[str], htmls: list[str], level: int) -> None:
    if depth + level > limits.max_depth + 1 or level > 60:
        raise LimitExceeded(f"nesting deeper than {limits.max_depth} levels")
    ctype = part.get_content_type()
    if ctype in ("message/delivery-status", "message/global-delivery-status"):
        m.delivery_status.append(_delivery_status_text(part))
        return
    if part.is_multipart():
        payload = part.get_payload()
        if ctype == "message/rfc822" or (ctype.startswith("message/") and not isinstance(
                payload, list)):
            _message_part(part, m, limits, depth, level)
            return
        if not isinstance(payload, list):
            return
        for sub in payload:
            if isinstance(sub, Message):
                if sub.get_content_type() == "message/rfc822":
                    _message_part(sub, m, limits, depth, level + 1)
                else:
                    _walk(sub, m, limits, depth, texts, htmls, level + 1)
        return
    if ctype == "message/rfc822":
        _message_part(part, m, limits, depth, level)
        return
    if ctype == "message/delivery-status" or ctype == "message/global-delivery-status":
        m.delivery_status.append(_delivery_status_text(part))
        return
    if ctype in ("text/rfc822-headers", "message/global-headers"):
        m.rfc822_headers.append(decode_part(part))
        return
    if ctype in ("text/plain", "text/html") and not _is_attachment(part):
        text = decode_part(part)
        (texts if ctype == "text/plain" else htmls).append(text)
        return
    _attachment(part, m, limits, depth, texts, htmls)


def _delivery_status_text(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):
        # The stdlib parses delivery-status into header blocks.
        return "\n\n".join(
            "\n".join(f"{k}: {v}" for k, v in _raw_items(b)) for b in payload
            if isinstance(b, Message))
    return decode_part(part)


def _message_part(part: Message, m: Mail, limits: ParseLimits, depth: int, level: int) -> None:
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if isinstance(payload, Message):
        inner = payload
    if inner is None:
        data = part.get_payload(decode=True)
        if isinstance(data, bytes) and data:
            inner = parse_bytes(data)
    if isinstance(inner, Message):
        m.forwards.append(normalise(inner, limits, depth + 1))


def _attachment(part: Message, m: Mail, limits: ParseLimits, depth: int,
                texts: list[str], htmls: list[str]) -> None:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001
        data = None
    if not isinstance(data, bytes):
        data = b""
    name = _filename(part)
    ctype = part.get_content_type()
    if len(data) > limits.max_attachment_bytes:
        raise LimitExceeded(
            f"attachment larger than {limits.max_attachment_bytes} bytes ({len(data)} bytes)")
    a = Attachment(filename=name, content_type=ctype, size=len(data))
    m.attachments.append(a)
    kind = att.kind_of(name, ctype, data)
    a.kind = kind
    if kind == "docx":
        a.text = att.docx_text(data, limits, m.warnings)
    elif kind == "pdf":
        a.text = att.pdf_text(data, m.warnings)
    elif kind == "text":
        a.text = decode_part(part)
    elif kind == "eml":
        m.forwards.append(normalise(parse_bytes(data), limits, depth + 1))
    elif kind == "msg":
        inner = att.msg_to_message(data, m.warnings)
        if inner is not None:
            m.forwards.append(normalise(inner, limits, depth + 1))
    elif kind == "tnef":
        inner = att.tnef_to_message(data, m.warnings)
        if inner is not None:
            sub = normalise(inner, limits, depth + 1)
            # winmail.dat carries the sender's own body and attachments: merge, not a forward.
            if sub.text.strip():
                texts.append(sub.text)
            if sub.html:
                htmls.append(sub.html)
            m.attachments.extend(sub.attachments)
            m.forwards.extend(sub.forwards)
            m.warnings.extend(sub.warnings)
