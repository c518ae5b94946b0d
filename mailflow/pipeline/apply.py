"""Route one parsed message to what it means for the cases: open, complete, command, note, or
nothing (automatic mail). Runs inside the ingest transaction."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.core.lifecycle import InvalidTransition, State
from mailflow.db.models import Case, InboundMessage, OutboxMessage
from mailflow.db.store import record_event
from mailflow.pipeline import cases
from mailflow.pipeline.authorise import over_rate_limit, own_mail, verify_reply
from mailflow.pipeline.cases import Actor
from mailflow.pipeline.floods import HELD_REASON
from mailflow.pipeline.notices import business_team, notify
from mailflow.sources.base import Outcome
from parsers.classify import own_mail_reason
from parsers.replies import ref_from_subject

if TYPE_CHECKING:
    from mailflow.app import PartnershipRuntime
    from parsers import Command, ParsedMessage

log = logging.getLogger(__name__)
_EXTEND = re.compile(r"^\s*(\d{1,2})\b\s*(.*)$", re.S)


def apply_message(s: Session, rt: PartnershipRuntime, parsed: ParsedMessage, inbound: InboundMessage,
                  now: datetime, *, reviewed: bool = False) -> tuple[Outcome, str | None]:
    """What the message does, and how the source should settle it. `reviewed`: a person has looked
    at this very message and released it from quarantine, so the sender's hourly limit (which holds
    mail nobody has looked at) does not hold it again; every other check still applies."""
    inbound.sender = parsed.from_addr.lower() if parsed.from_addr else None   # as over_rate_limit compares
    actor = Actor(parsed.from_addr or "unknown sender", inbound, parsed.message_id)
    own = own_mail_reason(parsed, own_mail(rt))
    if own is not None:
        # A loop (a relay, a forwarding rule, a copy to itself): never acted on, never answered.
        record_event(s, now, "system", "own_mail", inbound=inbound, why=own)
        return Outcome.PROCESSED, own
    if parsed.kind == "bounce":
        return _bounce(s, rt, parsed, inbound, now), None
    if parsed.kind == "unrelated":
        return Outcome.LEFT, "unrelated mail"
    if not reviewed and over_rate_limit(s, rt, parsed.from_addr, inbound.arrived_at or now):
        # Held unread; ingest tells the business team once an hour per sender (pipeline/floods.py).
        return Outcome.QUARANTINED, HELD_REASON
    if parsed.kind == "auto_reply":
        case = _case_of(s, rt, parsed)
        if case is not None:
            # Kept (an out-of-office may carry a quoted command) but never acted on or answered.
            cases.note(s, case, actor, now, parsed.new_text or parsed.full_text, verified=False)
            record_event(s, now, actor.address, "auto_reply", case=case, inbound=inbound)
        inbound.case_id = case.id if case else None
        return Outcome.PROCESSED, None
    if parsed.kind == "form":
        case = cases.open_case(s, rt, parsed, actor, now)
        inbound.case_id = case.id
        log.info("inbound #%s opened %s", inbound.id, case.reference)
        return Outcome.PROCESSED, None
    case = _case_of(s, rt, parsed)
    if case is None:
        return Outcome.QUARANTINED, f"a reply about {parsed.case_ref or 'no case'}, which is not a case here"
    inbound.case_id = case.id
    verdict = verify_reply(s, rt, parsed, case, now, rate_checked=True)
    if not verdict.trusted:
        cases.note(s, case, actor, now, parsed.new_text, verified=False)
        record_event(s, now, actor.address, "unverified_reply", case=case, inbound=inbound,
                     reasons=verdict.reasons, commands=[c.name for c in parsed.commands])
        if not parsed.automated:
            notify(s, rt, case, "unverified_reply", now, to=business_team(rt), sender=actor.address,
                   reasons=verdict.reasons, commands=parsed.commands)
        return Outcome.PROCESSED, "unverified: " + "; ".join(verdict.reasons)
    if case.state == State.INCOMPLETE and parsed.fields:
        cases.complete_case(s, rt, case, parsed.fields, actor, now)
    usable = [c for c in parsed.commands if c.refused is None]
    if not usable and case.state != State.INCOMPLETE:
        cases.note(s, case, actor, now, parsed.new_text)
    _refuse_unmeant(s, rt, case, [c for c in parsed.commands if c.refused], actor, now)
    for command in usable:
        _command(s, rt, case, command, actor, now)
    return Outcome.PROCESSED, None


def _refuse_unmeant(s: Session, rt: PartnershipRuntime, case: Case, refused: list[Command], actor: Actor,
                    now: datetime) -> None:
    """Commands that cannot be meant change nothing; the sender is told why (and, for #resolved
    with #escalate, the business team too)."""
    for command in (c for c in refused if c.refused == "placeholder"):
        why = (f"the text after #{command.name} is mailflow's own placeholder from its instructions, "
               f"not yours: reply again with the real text in its place "
               f"(for example '#resolved care package agreed at the meeting')")
        record_event(s, now, actor.address, "command_refused", case=case, command=command.name, why=why)
        notify(s, rt, case, "case_update", now, to=[actor.address], change=f"#{command.name} not applied",
               detail=why, by=actor.address, in_reply_to=actor.message_id)
    ambiguous = [c for c in refused if c.refused == "ambiguous"]
    if ambiguous:
        why = ("one reply both resolved and escalated the case, so neither was applied: "
               "reply again with the one you mean")
        for command in ambiguous:
            record_event(s, now, actor.address, "command_refused", case=case, command=command.name, why=why)
        notify(s, rt, case, "case_update", now, to=[actor.address], cc=business_team(rt),
               change="#resolved and #escalate not applied", detail=why, by=actor.address,
               in_reply_to=actor.message_id)


def _command(s: Session, rt: PartnershipRuntime, case: Case, command: Command, actor: Actor,
             now: datetime) -> None:
    text = command.text.strip()
    try:
        match command.name:
            case "resolved":
                cases.resolve(s, rt, case, actor, now, text or "(no outcome given)")
            case "escalate":
                refused = cases.refuse_escalation_by(rt, case, actor.address)
                if refused:
                    raise InvalidTransition(refused)
                cases.escalate(s, rt, case, actor, now, text or "escalated by reply", clock_start=now)
            case "confirmed":
                cases.confirm(s, rt, case, actor, now)
            case "extend":
                m = _EXTEND.match(text)
                if m is None:
                    raise InvalidTransition("#extend needs a number of working days, e.g. '#extend 3 awaiting records'")
                cases.extend(s, rt, case, actor, now, int(m.group(1)), m.group(2).strip() or "no reason given")
            case "urgent":
                cases.mark_urgent(s, rt, case, actor, now)
            case "withdraw":
                cases.withdraw(s, rt, case, actor, now, text or "no reason given")
            case "note":
                cases.note(s, case, actor, now, text)
            case _:
                record_event(s, now, actor.address, "unknown_command", case=case, command=command.name)
    except InvalidTransition as exc:
        record_event(s, now, actor.address, "command_refused", case=case, command=command.name, why=str(exc))
        notify(s, rt, case, "case_update", now, to=[actor.address], change=f"#{command.name} not applied",
               detail=str(exc), by=actor.address, in_reply_to=actor.message_id)


def _case_of(s: Session, rt: PartnershipRuntime, parsed: ParsedMessage) -> Case | None:
    """The case a message is about. When its subject names another case of ours than its thread
    or token do, the subject's case is the one it claims to act on: it is checked (and, being
    tied to another case, refused) there, rather than silently applied to the thread's case."""
    ref = parsed.case_ref
    named = ref_from_subject(parsed.subject)
    if named and named != ref and named.startswith(rt.prefix + "-") and \
            s.scalar(select(Case.id).where(Case.reference == named)) is not None:
        ref = named
    if not ref or not ref.startswith(rt.prefix + "-"):
        return None
    # Hold the case (PostgreSQL) and read it fresh: a sweeper moving it concurrently finishes first
    # (or skips it), so a reply never acts on a stage that has just changed under it.
    return s.scalars(select(Case).where(Case.reference == ref).with_for_update()
                     .execution_options(populate_existing=True)).first()


def _bounce(s: Session, rt: PartnershipRuntime, parsed: ParsedMessage, inbound: InboundMessage,
            now: datetime) -> Outcome:
    """A delivery failure: tie it to the outbox row it answers and tell the business team."""
    row = None
    if parsed.bounced_message_id:
        row = s.scalars(select(OutboxMessage).where(
            OutboxMessage.message_id == parsed.bounced_message_id)).first()
    if row is None:
        record_event(s, now, "system", "bounce_unmatched", inbound=inbound)
        return Outcome.PROCESSED
    if row.state == "bounced":
        # The same message bounced again (a second recipient, a retried DSN): the business team
        # already has a failure notice for it; record this one, send none.
        inbound.case_id = row.case_id
        row.last_error = f"{row.last_error}; bounced for {', '.join(parsed.bounced_recipients) or 'a recipient'}"
        record_event(s, now, "system", "bounced_again", case=s.get(Case, row.case_id) if row.case_id else None,
                     inbound=inbound, outbox_id=row.id, recipients=parsed.bounced_recipients)
        return Outcome.PROCESSED
    row.state = "bounced"
    row.last_error = f"bounced for {', '.join(parsed.bounced_recipients) or 'a recipient'}"
    case = s.get(Case, row.case_id) if row.case_id else None
    inbound.case_id = row.case_id
    record_event(s, now, "system", "bounced", case=case, inbound=inbound, outbox_id=row.id,
                 recipients=parsed.bounced_recipients)
    if case is not None and row.kind != "delivery_failure":
        notify(s, rt, case, "delivery_failure", now, to=business_team(rt), failed_kind=row.kind,
               recipients=parsed.bounced_recipients, error=row.last_error)
    return Outcome.PROCESSED
