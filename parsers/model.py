"""The parser's public data types: limits, commands and the parsed message."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

KINDS = ("form", "reply", "auto_reply", "bounce", "unrelated")


@dataclass(frozen=True)
class ParseLimits:
    """Bounds on the work one message may cost (the config's [limits])."""

    max_message_bytes: int = 25_000_000
    max_attachment_bytes: int = 15_000_000
    max_depth: int = 6
    max_docx_uncompressed: int = 50_000_000
    # Checked on the raw header bytes before parsing (and on each forwarded message's headers).
    max_header_count: int = 1_000
    # One header field, folded lines included. The stdlib's structured header parser is quadratic
    # (a 32 KB Content-Type or Subject can take seconds), so ordinary fields are kept short; address
    # lists and References are read by linear parsers and may be longer.
    max_header_bytes: int = 16_000
    max_address_list_bytes: int = 256_000     # To, Cc, Bcc, Reply-To, Resent-*, References together
    max_recipients: int = 1_000              # addresses in To, Cc and Bcc together
    max_parts: int = 250                     # MIME parts, forwarded messages' included
    # Text handed to the quote stripper and to form extraction is cut to these sizes.
    max_reply_text_chars: int = 32_000
    max_form_text_chars: int = 64_000
    # A parse taking longer is stopped (its worker process killed) and the message quarantined.
    parse_timeout_seconds: float = 30.0


@dataclass
class Command:
    name: str
    text: str
    # Why it cannot be meant, so is refused rather than applied: "placeholder" (the text is
    # mailflow's own `<the agreed outcome>`) or "ambiguous" (#resolved and #escalate together).
    refused: str | None = None


@dataclass
class ParsedMessage:
    kind: str = "unrelated"
    rejected: str | None = None
    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    subject: str = ""
    from_addr: str | None = None
    from_name: str | None = None
    # Why From holds no single unambiguous address (None when it does); such a message cannot act.
    sender_problem: str | None = None
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    reply_to: list[str] = field(default_factory=list)
    date: datetime | None = None
    return_path: str | None = None
    case_ref: str | None = None
    case_ref_source: str | None = None
    reply_token: str | None = None
    mailflow_signature: str | None = None        # X-Mailflow-Signature: on mailflow's own mail
    commands: list[Command] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    new_text: str = ""
    full_text: str = ""
    automated: bool = False
    auth: dict[str, str] = field(default_factory=dict)
    bounced_message_id: str | None = None
    bounced_recipients: list[str] = field(default_factory=list)
    sha256: str = ""
    # Extras beyond the pipeline contract.
    form: str | None = None                      # name of the form definition that matched
    extra_fields: dict[str, str] = field(default_factory=dict)  # form labels with no canonical name
    attachments: list[str] = field(default_factory=list)        # attachment file names
    forwards: list[dict[str, Any]] = field(default_factory=list)  # attached/forwarded messages

    def to_json(self) -> dict[str, Any]:
        """The `mailflow parse --format json` shape (JSON-safe values only)."""
        return {
            "kind": self.kind,
            "case_ref": self.case_ref,
            "case_ref_source": self.case_ref_source,
            "reply_token": self.reply_token,
            "commands": [{"name": c.name, "text": c.text, **({"refused": c.refused} if c.refused else {})}
                         for c in self.commands],
            "fields": self.fields,
            "missing": list(self.missing),
            "warnings": list(self.warnings),
            "rejected": self.rejected,
            "automated": self.automated,
            "form": self.form,
            "extra_fields": dict(self.extra_fields),
            "message_id": self.message_id,
            "in_reply_to": self.in_reply_to,
            "references": list(self.references),
            "subject": self.subject,
            "from": self.from_addr,
            "from_name": self.from_name,
            "sender_problem": self.sender_problem,
            "to": list(self.to),
            "cc": list(self.cc),
            "reply_to": list(self.reply_to),
            "date": self.date.isoformat() if self.date else None,
            "return_path": self.return_path,
            "auth": dict(self.auth),
            "bounced_message_id": self.bounced_message_id,
            "bounced_recipients": list(self.bounced_recipients),
            "attachments": list(self.attachments),
            "forwards": [dict(f) for f in self.forwards],
            "sha256": self.sha256,
            "new_text": self.new_text,
        }
