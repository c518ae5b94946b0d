"""Rendered text + headers (+ attachments) -> an RFC 5322 message with mailflow's loop-safe headers."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from mailflow.addresses import parse_address, unique_addresses
from mailflow.rendering import RenderedMail
from parsers.header_classes import HeaderClasses


@dataclass(frozen=True)
class Envelope:
    from_addr: str
    to: Sequence[str]
    cc: Sequence[str] = ()
    reply_to: str | None = None
    message_id: str = ""
    in_reply_to: str | None = None
    references: Sequence[str] = field(default_factory=tuple)
    auto_submitted: str = "auto-generated"   # "auto-replied" for acknowledgements (RFC 3834)
    subject_prefix: str = ""                 # e.g. "[secure]" for NHSmail's encryption gateway
    signature: str | None = None             # X-Mailflow-Signature: HMAC of the Message-ID

    @property
    def recipients(self) -> tuple[str, ...]:
        """The SMTP envelope: each address once (display names and case ignored)."""
        return tuple(a.lower() for a in unique_addresses([*self.to, *self.cc]))


@dataclass(frozen=True)
class Attachment:
    """A file sent with a message, under a name free of personal data. `message/rfc822` data is a
    whole email, attached as an email (Outlook opens it as one); anything else goes as base64."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)
    content_id: str | None = None   # shown inside the HTML body (`<img src="cid:...">`), not as a file


SIGNATURE_HEADER = "X-Mailflow-Signature"

# CRLF line ends, as SMTP sends them; headers stay on one line up to RFC 5322's hard limit
# rather than folding at 78 characters.
POLICY = policy.SMTP.clone(max_line_length=998, header_factory=HeaderClasses())


def compose(mail: RenderedMail, env: Envelope, date: datetime,
            attachments: Sequence[Attachment] = ()) -> EmailMessage:
    msg = EmailMessage(policy=POLICY)
    msg["From"] = env.from_addr
    to = _people(env.to)
    msg["To"] = to or ""
    cc = [a for a in _people(env.cc) if a.addr_spec.lower() not in {t.addr_spec.lower() for t in to}]
    if cc:
        msg["Cc"] = cc
    if env.reply_to:
        msg["Reply-To"] = env.reply_to
    msg["Subject"] = f"{env.subject_prefix} {mail.subject}".strip()
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = env.message_id
    if env.in_reply_to:
        msg["In-Reply-To"] = env.in_reply_to
    if env.references:
        msg["References"] = " ".join(env.references)
    # RFC 3834: never answered by auto-responders; not "All", which would suppress the bounces we want.
    msg["Auto-Submitted"] = env.auto_submitted
    msg["X-Auto-Response-Suppress"] = "OOF, AutoReply"
    # Survives relays that strip the two above: mailflow knows its own mail by it and never answers it.
    if env.signature:
        msg[SIGNATURE_HEADER] = env.signature
    msg.set_content(mail.text)
    msg.add_alternative(mail.html, subtype="html")
    html = msg.get_body(("html",))
    for a in attachments:
        if a.content_id is not None and html is not None:
            maintype, _, subtype = a.content_type.partition("/")
            html.add_related(a.data, maintype=maintype, subtype=subtype, cid=f"<{a.content_id}>",
                             filename=a.filename, disposition="inline")
    for a in attachments:
        if a.content_id is None:
            _attach(msg, a)
    _fix_boundaries(msg, env.message_id)
    return msg


def _fix_boundaries(msg: EmailMessage, message_id: str) -> None:
    """Each multipart's boundary derived from the Message-ID, so that composing the same mail twice
    gives the same bytes (an outbox draft read before it is sent, e.g. for a subject-access export,
    is the message the sender will send). A boundary found inside a part's content is left to the
    generator, which picks a random one that is not."""
    seed = hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    leaves = [p.get_payload() for p in msg.walk() if not p.is_multipart()]
    for i, part in enumerate(msg.walk()):
        if part.is_multipart():
            boundary = f"=_mailflow_{seed}_{i}"
            if not any(isinstance(text, str) and boundary in text for text in leaves):
                part.set_boundary(boundary)


def _people(addresses: Sequence[str]) -> list[Address]:
    """Each address once, its first spelling's display name kept."""
    seen: dict[str, Address] = {}
    for text in addresses:
        parsed = parse_address(text)
        if parsed is not None:
            seen.setdefault(parsed.addr_spec.lower(), parsed)
    return list(seen.values())


def _attach(msg: EmailMessage, a: Attachment) -> None:
    if a.content_type != "message/rfc822":
        maintype, _, subtype = a.content_type.partition("/")
        msg.add_attachment(a.data, maintype=maintype, subtype=subtype or "octet-stream", filename=a.filename)
        return
    # An attached email goes byte for byte as received (only its line ends made CRLF, as SMTP has
    # them): a string payload is written out as it is, where a parsed message would be re-generated.
    # An attached message may only be 7bit or 8bit (RFC 2046 5.2.1), never base64.
    data = _CRLF.sub(b"\r\n", a.data)
    part = EmailMessage(policy=msg.policy)
    part["Content-Type"] = "message/rfc822"
    part["Content-Transfer-Encoding"] = "7bit" if data.isascii() else "8bit"
    part.add_header("Content-Disposition", "attachment", filename=a.filename)
    part.set_payload(data.decode("ascii", "surrogateescape"))
    msg.make_mixed()
    msg.attach(part)


_CRLF = re.compile(rb"\r?\n")
