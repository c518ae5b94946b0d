"""Quarantine review: list, show, release and discard quarantined messages. The command line and
the web console call these same functions; each action is an audit event naming who did it.

A released message goes through the pipeline as if it had just arrived: its raw bytes (kept in
the database) are parsed again and applied (a form opens a case, a reply acts on its case, a
message over its sender's hourly limit is held again); the inbound row is updated in place, so
it is never recorded twice. A discarded message keeps its row, its raw bytes and the reason it
was discarded until retention removes it (`mailflow purge`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, NoReturn

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.db.bounds import cut
from mailflow.db.models import Case, InboundMessage
from mailflow.errors import MailflowError
from mailflow.logging_setup import error_summary
from mailflow.pipeline.apply import apply_message
from mailflow.pipeline.audit import append_event, record_read
from mailflow.sources.base import Outcome
from parsers.worker import parse_in_worker

if TYPE_CHECKING:
    from mailflow.app import App
    from parsers import ParsedMessage

log = logging.getLogger(__name__)

QUARANTINED = Outcome.QUARANTINED.value
DISCARDED = "discarded"
REASON_CHARS = 2000
PREVIEW_CHARS = 4000


class QuarantineError(MailflowError):
    """Not a quarantined message (unknown, already released or discarded)."""


@dataclass(frozen=True)
class Held:
    """One line of the review list: no message content, the sender only."""

    id: int
    partnership: str
    received_at: datetime
    sender: str | None
    size: int
    kind: str | None
    outcome: str
    reason: str | None


@dataclass(frozen=True)
class Shown:
    held: Held
    message_id: str | None
    sha256: str
    subject: str
    to: list[str]
    date: datetime | None
    attachments: list[str]
    text: str                    # the readable text, cut to PREVIEW_CHARS
    parse_problem: str | None    # why the message could not be read again, if it could not
    raw: bytes


@dataclass(frozen=True)
class Released:
    id: int
    outcome: str
    reason: str | None
    case_reference: str | None


def _held(m: InboundMessage) -> Held:
    return Held(m.id, m.partnership, m.received_at, m.sender, m.size, m.kind, m.outcome, m.reason)


def list_held(s: Session, partnership: str | None = None, everything: bool = False) -> list[Held]:
    """Quarantined messages, oldest first (`everything`: discarded ones too)."""
    outcomes = [QUARANTINED, DISCARDED] if everything else [QUARANTINED]
    stmt = select(InboundMessage).where(InboundMessage.outcome.in_(outcomes)).order_by(InboundMessage.id)
    if partnership:
        stmt = stmt.where(InboundMessage.partnership == partnership)
    return [_held(m) for m in s.scalars(stmt)]


def _get(s: Session, inbound_id: int, lock: bool = False, quarantined: bool = True) -> InboundMessage:
    stmt = select(InboundMessage).where(InboundMessage.id == inbound_id)
    if lock and s.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    inbound = s.scalars(stmt).first()
    if inbound is None:
        raise QuarantineError(f"no inbound message #{inbound_id}")
    if quarantined and inbound.outcome != QUARANTINED:
        raise QuarantineError(f"inbound message #{inbound_id} is not quarantined (it is {inbound.outcome})")
    return inbound


def show(app: App, inbound_id: int, who: str, now: datetime, via: str = "quarantine show") -> Shown:
    """The message as far as it can be read, and its raw bytes; the read is an audit event."""
    with app.db.transaction() as s:
        inbound = _get(s, inbound_id, quarantined=False)
        record_read(s, now, who, via, inbound=inbound)
        held, raw, message_id, sha = _held(inbound), bytes(inbound.raw), inbound.message_id, inbound.sha256
    parsed: ParsedMessage | None = None
    problem: str | None = None
    try:
        parsed = parse_in_worker(raw, app.config.limits)
        problem = parsed.rejected
    except Exception as exc:  # noqa: BLE001 - shown as a reason, the raw bytes are still there
        problem = error_summary(exc)
    return Shown(held=held, message_id=message_id, sha256=sha,
                 subject=parsed.subject if parsed else "", to=list(parsed.to) if parsed else [],
                 date=parsed.date if parsed else None, attachments=list(parsed.attachments) if parsed else [],
                 text=cut(parsed.full_text or parsed.new_text, PREVIEW_CHARS) if parsed else "",
                 parse_problem=problem, raw=raw)


def release(app: App, inbound_id: int, who: str, now: datetime, note: str | None = None) -> Released:
    """Put a quarantined message through the pipeline again, as if new. Raises QuarantineError
    (nothing changed but the audit event saying so) when it cannot be read or applied."""
    with app.db.transaction() as s:
        raw = bytes(_get(s, inbound_id).raw)
    try:
        parsed = parse_in_worker(raw, app.config.limits)
    except Exception as exc:  # noqa: BLE001 - the message stays quarantined
        _refused(app, inbound_id, who, now, f"could not be read: {error_summary(exc)}")
    if parsed.rejected:
        _refused(app, inbound_id, who, now, f"the parser still refuses it: {parsed.rejected}")
    failure: str | None = None
    with app.db.transaction() as s:
        inbound = _get(s, inbound_id, lock=True)   # another reviewer may have acted meanwhile
        rt = app.runtime(inbound.partnership)
        was = inbound.reason
        try:
            with s.begin_nested():
                outcome, reason = apply_message(s, rt, parsed, inbound, now, reviewed=True)
        except Exception as exc:  # noqa: BLE001 - reported; the message stays quarantined
            failure = f"could not be applied: {error_summary(exc)}"
            log.error("released inbound #%s %s", inbound_id, failure)
        if failure is None:
            inbound.kind, inbound.outcome, inbound.reason = parsed.kind, outcome.value, reason
            case_ref = s.scalar(select(Case.reference).where(Case.id == inbound.case_id)) \
                if inbound.case_id is not None else None
            append_event(s, now, who, "quarantine_released", inbound=inbound,
                         case=s.get(Case, inbound.case_id) if inbound.case_id is not None else None,
                         was=was, outcome=outcome.value, now_reason=reason, note=note)
            log.info("inbound #%s released by review: %s", inbound_id, outcome.value)
            return Released(inbound_id, outcome.value, reason, case_ref)
    _refused(app, inbound_id, who, now, failure or "not applied")


def _refused(app: App, inbound_id: int, who: str, now: datetime, why: str) -> NoReturn:
    with app.db.transaction() as s:
        append_event(s, now, who, "quarantine_release_failed", inbound=_get(s, inbound_id), why=why)
    raise QuarantineError(f"inbound message #{inbound_id} stays quarantined: {why}")


def discard(s: Session, inbound_id: int, who: str, reason: str, now: datetime) -> Held:
    """Settle a quarantined message without acting on it; the reason is kept with it."""
    if not reason.strip():
        raise QuarantineError("a discard needs a reason")
    inbound = _get(s, inbound_id, lock=True)
    was = inbound.reason
    inbound.outcome, inbound.reason = DISCARDED, cut(f"discarded: {reason.strip()}", REASON_CHARS)
    append_event(s, now, who, "quarantine_discarded", inbound=inbound, was=was, reason=reason.strip())
    return _held(inbound)
