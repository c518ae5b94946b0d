"""The case file that travels with an escalation: what the form said, the stage history, and the
original form as it was received.

Every policy sends the completed pro-forma to the next tier (and, in Swindon from Stage 2, to the
business team). The escalation, the business-team copy and the final alert therefore carry the
case in their body and the form as an attachment: its .docx/.pdf files as they came, or the form
message itself as an attached email when the form was in the body. Attachment names carry the
case reference only. A partnership whose mail route is not secure turns this off
(`send_form_with_escalations = false`): the notices then say the business team holds the details.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import Message
from email.policy import compat32
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.composer import Attachment
from mailflow.core import form_fields
from mailflow.core.policy import Policy
from mailflow.db.models import Case, Event, InboundMessage

if TYPE_CHECKING:
    from mailflow.app import PartnershipRuntime

# The notices that carry the case file.
KINDS = ("escalation", "business_copy", "final_alert", "catch_up")   # catch_up: replaces the first three after downtime

ADULT = ("adult_name", "adult_identifier", "adult_dob")   # never the address: the minimum necessary

# A form document, by file extension, and the type it is sent as.
DOCUMENT_TYPES = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".doc": "application/msword",
    ".pdf": "application/pdf",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".rtf": "application/rtf",
}
_EXTENSION_OF = {v: k for k, v in DOCUMENT_TYPES.items()} | {"text/rtf": ".rtf"}


# ---------------------------------------------------------------------------- stage history

@dataclass(frozen=True)
class StageStart:
    stage: int
    title: str
    started: datetime | None   # None: the form is still incomplete, the stage has not begun
    why: str


def stage_history(events: Iterable[Event], policy: Policy | None) -> list[StageStart]:
    """Each stage the case has been at, when it began and why, from the audit trail."""
    def title(n: int) -> str:
        return policy.stage(n).title if policy is not None and 1 <= n <= policy.last_stage else ""

    out: list[StageStart] = []
    waiting: tuple[int, str] | None = None   # opened incomplete: the stage begins when completed
    for e in events:
        d = e.detail or {}
        if e.action == "opened":
            stage, why = int(d.get("stage") or 1), f"the form from {e.actor} opened the case"
            if d.get("state") == "incomplete":
                waiting = (stage, why)
            else:
                out.append(StageStart(stage, title(stage), e.at, why))
        elif e.action == "details_added" and waiting is not None and not d.get("still_missing"):
            stage, why = waiting
            out.append(StageStart(stage, title(stage), e.at, f"{why}; {e.actor} completed it"))
            waiting = None
        elif e.action == "escalated":
            stage = int(d.get("to_stage") or 0)
            started = datetime.fromisoformat(d["clock_start"]) if d.get("clock_start") else e.at
            how = "automatically" if d.get("automatic") else f"by {e.actor}"
            reason = f": {d['reason']}" if d.get("reason") else ""
            out.append(StageStart(stage, title(stage), started,
                                  f"escalated from Stage {d.get('from_stage')} {how}{reason}"))
        elif e.action == "reopened":
            stage = int(d.get("stage") or 1)
            out.append(StageStart(stage, title(stage), e.at, f"reopened by {e.actor}: {d.get('reason', '')}"))
    if waiting is not None:
        stage, why = waiting
        out.append(StageStart(stage, title(stage), None, f"{why}; waiting for the missing details"))
    return out


# ---------------------------------------------------------------------------- the original form

@dataclass(frozen=True)
class OriginalForm:
    attachments: tuple[Attachment, ...] = ()
    left_out: str | None = None    # why the form is not attached, for the reader


def original_form(s: Session, case: Case, max_bytes: int) -> OriginalForm:
    """The form as received, as attachments; built once per case per session (an escalation and
    its business copy share it)."""
    cached: tuple[tuple[int, int], OriginalForm] | None = s.info.get(_CACHE_KEY)
    if cached is not None and cached[0] == (case.id, max_bytes):
        return cached[1]
    form = _build_original_form(s, case, max_bytes)
    s.info[_CACHE_KEY] = ((case.id, max_bytes), form)   # the latest case only: memory stays bounded
    return form


_CACHE_KEY = "mailflow.case_file.original_form"


def opening_message(s: Session, case: Case) -> InboundMessage | None:
    """The message that opened the case: the one its `opened` event records, else its earliest."""
    inbound_id = next((e.inbound_id for e in case.events if e.action == "opened" and e.inbound_id), None)
    if inbound_id is None:
        inbound_id = s.scalars(select(InboundMessage.id).where(InboundMessage.case_id == case.id)
                               .order_by(InboundMessage.id).limit(1)).first()
    return s.get(InboundMessage, inbound_id) if inbound_id is not None else None


def _build_original_form(s: Session, case: Case, max_bytes: int) -> OriginalForm:
    inbound = opening_message(s, case)
    if inbound is None:
        return OriginalForm(left_out="the message that opened the case is not on record")
    # compat32: the documents' bytes and names are all that is read, and the default policy's
    # header objects made this parse 2-8x slower (it runs in the transaction that queues the notice).
    documents = _documents(message_from_bytes(inbound.raw, policy=compat32))
    if not documents:
        if len(inbound.raw) > max_bytes:
            return OriginalForm(left_out=_too_large(len(inbound.raw), max_bytes))
        return OriginalForm((Attachment(f"{case.reference}-form.eml", "message/rfc822", inbound.raw),))
    attached: list[Attachment] = []
    total, skipped = 0, 0
    for n, (ext, data) in enumerate(documents, start=1):
        if total + len(data) > max_bytes:
            skipped += 1
            continue
        total += len(data)
        attached.append(Attachment(f"{case.reference}-form-{n}{ext}", DOCUMENT_TYPES[ext], data))
    left_out = None
    if skipped:
        left_out = (f"{skipped} of the form's {len(documents)} documents exceeded the size limit for "
                    f"attachments ({_mb(max_bytes)})")
    return OriginalForm(tuple(attached), left_out)


def _documents(msg: Message) -> list[tuple[str, bytes]]:
    """The form documents attached to a message (also inside a forwarded message), in order."""
    found: list[tuple[str, bytes]] = []
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() == "message":
            continue
        filename = _decoded(part.get_filename() or "")
        if not filename and part.get_content_disposition() != "attachment":
            continue
        ext = PurePath(filename.lower()).suffix
        if ext not in DOCUMENT_TYPES:
            ext = _EXTENSION_OF.get(part.get_content_type(), "")
        payload = part.get_payload(decode=True)
        if ext and isinstance(payload, bytes) and payload:
            found.append((ext, payload))
    return found


def _decoded(filename: str) -> str:
    """A filename as the sender's client wrote it: RFC 2231 is undone by get_filename, an RFC 2047
    encoded word ("=?utf-8?B?...?=", as Outlook writes non-ASCII names) here."""
    if "=?" not in filename:
        return filename
    try:
        return str(make_header(decode_header(filename)))
    except (HeaderParseError, LookupError, UnicodeDecodeError, ValueError):
        return filename


def _too_large(size: int, max_bytes: int) -> str:
    return f"the form message ({_mb(size)}) exceeds the size limit for attachments ({_mb(max_bytes)})"


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


# ---------------------------------------------------------------------------- the template context

@dataclass(frozen=True)
class CaseFile:
    """What the notice's body says about the case (`case_file` in the templates)."""

    enabled: bool
    adult: list[form_fields.Row] = field(default_factory=list)
    raising_agency: str = ""
    raising_person: str = ""
    receiving: list[dict[str, str]] = field(default_factory=list)   # agency, person
    category: str = ""
    summary: str = ""
    tried: list[form_fields.Row] = field(default_factory=list)
    history: list[StageStart] = field(default_factory=list)
    attached: list[str] = field(default_factory=list)
    left_out: str | None = None


def case_file(s: Session, rt: PartnershipRuntime, case: Case) -> tuple[CaseFile, tuple[Attachment, ...]]:
    """The body's case file and the attachments for a notice about `case`."""
    if not rt.config.send_form_with_escalations:
        return CaseFile(enabled=False), ()
    form = original_form(s, case, rt.app.config.limits.max_attachment_bytes)
    return describe(case, rt.policy, form), form.attachments


def describe(case: Case, policy: Policy, form: OriginalForm = OriginalForm()) -> CaseFile:
    """The case file from the case record alone (pure: no I/O)."""
    f: Mapping[str, Any] = case.fields or {}
    raiser = {"name": f.get("raiser_name"), "role": f.get("raiser_role"), "email": f.get("raiser_email")}
    phone = f.get("raiser_phone")
    receiving = [{"agency": str(o.get("agency") or ""),
                  "person": form_fields.person({k: v for k, v in o.items() if k != "agency"})}
                 for o in f.get("others_involved") or [] if isinstance(o, Mapping)]
    return CaseFile(
        enabled=True,
        adult=form_fields.given(f, ADULT),
        raising_agency=str(f.get("raiser_agency") or ""),
        raising_person=form_fields.person(raiser) + (f", {phone}" if phone else ""),
        receiving=[r for r in receiving if r["agency"] or r["person"]],
        category=form_fields.show(f.get("category")),
        summary=form_fields.show(f.get("disagreement_summary")),
        tried=form_fields.given(f, form_fields.TRIED),
        history=stage_history(case.events, policy),
        attached=[a.filename for a in form.attachments],
        left_out=form.left_out,
    )
