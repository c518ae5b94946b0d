"""What can happen to a case, each in the caller's transaction: the state change, its audit
event, its deadline rows and the notices it causes commit together or not at all."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.orm import Session

from mailflow.addresses import address_of
from mailflow.core.humanize import long_instant
from mailflow.core.lifecycle import InvalidTransition, State, next_state
from mailflow.core.policy import Stage
from mailflow.db.models import Case, Deadline, Event, InboundMessage
from mailflow.db.store import next_reference, record_event
from mailflow.pipeline import ledger
from mailflow.pipeline.deadline_rows import (
    cancel_pending,
    mark_new_case,
    schedule_confirmation,
    schedule_hold,
    schedule_stage,
)
from mailflow.pipeline.notices import (
    add_participants,
    agencies_of,
    business_team,
    notify,
    parties,
    raisers,
    role_addresses,
    tier_contacts,
    tier_people,
    unrouted_parties,
)
from mailflow.pipeline.outbox import note_new_case
from mailflow.pipeline.stalls import AWAITING_CHAIR, HANDED_OVER, reachable
from parsers.proforma import missing_fields

if TYPE_CHECKING:
    from mailflow.app import PartnershipRuntime
    from parsers import ParsedMessage

UK = ZoneInfo("Europe/London")

# How the incomplete-form request names what is missing: labels the form parser reads back.
MISSING_LABELS = {
    "adult_name": "Name of adult", "raiser_name": "Your name", "raiser_agency": "Your agency",
    "raiser_email": "Your email", "others_involved": "Other agency",
    "disagreement_summary": "Brief details of the professional disagreement",
}


@dataclass(frozen=True)
class Actor:
    """Who caused a change: an email sender, a deadline, the CLI, or the system."""

    address: str
    inbound: InboundMessage | None = None
    message_id: str | None = None   # the message to thread replies under


def _event(s: Session, case: Case, actor: Actor, action: str, now: datetime, **detail: Any) -> Event:
    return record_event(s, now, actor.address, action, case=case, inbound=actor.inbound, **detail)


def _transition(case: Case, trigger: str) -> None:
    case.state = next_state(case.state, trigger).value


# ---------------------------------------------------------------------------- opening

def open_case(s: Session, rt: PartnershipRuntime, parsed: ParsedMessage, actor: Actor,
              now: datetime) -> Case:
    """A new escalation form: an open case at the stage it names, or an incomplete draft."""
    fields = dict(parsed.fields)
    if parsed.extra_fields:   # the form's fields beyond the canonical ones, kept with the case
        fields["extra"] = dict(parsed.extra_fields)
    named = fields.get("stage")
    stage = min(max(named if isinstance(named, int) else 1, 1), rt.policy.last_stage)
    case = Case(
        reference=next_reference(s, rt.prefix, now.astimezone(UK).year), partnership=rt.prefix,
        policy=rt.policy.name, state=(State.INCOMPLETE if parsed.missing else State.OPEN).value,
        stage=stage, urgent=bool(fields.get("adult_at_risk")), fields=fields,
        missing=list(parsed.missing), opened_at=now, stage_started_at=now, updated_at=now,
        deadlines=[], events=[],   # loaded (empty): reading them later needs no query (nor a flush first)
    )
    s.add(case)
    raiser = fields.get("raiser_email") or parsed.from_addr
    if raiser:
        add_participants(s, case, [raiser], "raiser", "raiser", None, fields.get("raiser_agency"))
    if parsed.from_addr and raiser and parsed.from_addr.lower() != raiser.lower():
        add_participants(s, case, [parsed.from_addr], "submitter", "raiser", None, fields.get("raiser_agency"))
    for other in fields.get("others_involved") or []:
        if isinstance(other, dict) and other.get("email"):
            add_participants(s, case, [other["email"]], "other", "other", None, other.get("agency"))
    s.flush()
    note_new_case(s, case.id)
    mark_new_case(s, case)
    _event(s, case, actor, "opened", now, state=case.state, stage=case.stage, urgent=case.urgent,
           missing=case.missing)
    if case.state == State.INCOMPLETE:
        _ask_for_missing(s, rt, case, actor, now)
    else:
        _start(s, rt, case, actor, now, acknowledge=True)
    return case


def complete_case(s: Session, rt: PartnershipRuntime, case: Case, fields: dict[str, Any],
                  actor: Actor, now: datetime) -> None:
    """The sender's reply adds missing details; the case opens when nothing is missing."""
    case.fields = {**case.fields, **{k: v for k, v in fields.items() if v not in (None, "", [])}}
    case.missing = missing_fields(case.fields)
    case.updated_at = now
    _event(s, case, actor, "details_added", now, added=sorted(fields), still_missing=case.missing)
    if case.missing:
        _ask_for_missing(s, rt, case, actor, now)
        return
    _transition(case, "complete")
    case.opened_at = case.stage_started_at = now
    case.urgent = case.urgent or bool(case.fields.get("adult_at_risk"))
    for other in case.fields.get("others_involved") or []:
        if isinstance(other, dict) and other.get("email"):
            add_participants(s, case, [other["email"]], "other", "other", None, other.get("agency"))
    _start(s, rt, case, actor, now, acknowledge=True)


def _ask_for_missing(s: Session, rt: PartnershipRuntime, case: Case, actor: Actor, now: datetime) -> None:
    missing = [{"name": m, "label": MISSING_LABELS.get(m, m.replace("_", " ").capitalize())}
               for m in case.missing]
    notify(s, rt, case, "incomplete_form", now, to=raisers(case) or [actor.address],
           in_reply_to=actor.message_id, auto_submitted="auto-replied", missing=missing)


def _start(s: Session, rt: PartnershipRuntime, case: Case, actor: Actor, now: datetime,
           acknowledge: bool = False, previous_stage: int | None = None, reason: str | None = None,
           automatic: bool = False) -> None:
    """A stage begins: its deadlines, its people, and the notices the policy asks for."""
    schedule_stage(s, rt.policy, case, now)
    stage = rt.policy.stage(case.stage)
    people = tier_contacts(rt, case, case.stage)
    for person in people:
        add_participants(s, case, [person.email], stage.tier, person.side, case.stage, person.agency, person.name)
    if acknowledge:
        notify(s, rt, case, "acknowledgement", now, to=raisers(case) or [actor.address],
               in_reply_to=actor.message_id, auto_submitted="auto-replied")
        _tell_other_professional(s, rt, case, now)
    if people:
        _send_escalation(s, rt, case, now, [p.email for p in people], previous_stage, reason, automatic)
    gaps = unrouted_parties(rt, case, case.stage)
    if not people or gaps:
        named = ", ".join(repr(g.named or g.side + " agency (not named)") for g in gaps)
        _ask_business_team_to_route(s, rt, case, now, f"no {stage.tier} contact for "
                                    + (named if people and gaps else "the case's agencies"))
    roles = _roles(rt, case, stage, "stage_start")
    if "business_team" in roles:
        notify(s, rt, case, "business_copy", now, to=business_team(rt),
               previous_stage=previous_stage, reason=reason, automatic=automatic)
    for role in roles:
        if role != "business_team":
            _tell_role(s, rt, case, role, now, "stage_start")


def _send_escalation(s: Session, rt: PartnershipRuntime, case: Case, now: datetime, to: list[str],
                     previous_stage: int | None, reason: str | None, automatic: bool) -> None:
    """The stage's escalation notice to who acts now, copying the raiser and the previous tier."""
    previous = tier_people(rt, case, previous_stage) if previous_stage else []
    notify(s, rt, case, "escalation", now, to=to, cc=[*raisers(case), *previous],
           previous_stage=previous_stage, reason=reason, automatic=automatic)


def _tell_other_professional(s: Session, rt: PartnershipRuntime, case: Case, now: datetime) -> None:
    """The other professional named on the form hears that an escalation involving them was raised
    (once, when the case opens; the policy's `tell_other_professional` turns it off)."""
    if rt.policy.tell_other_professional:
        notify(s, rt, case, "other_professional_notice", now,
               to=[p.email for p in case.participants if p.role == "other"])


def _roles(rt: PartnershipRuntime, case: Case, stage: Stage, when: str) -> list[str]:
    """The roles a stage's policy names for `when`; a role limited to one kind of agency (a local
    authority's Director of Social Work) only when one of the case's agencies is of that kind."""
    kinds: list[str | None] = [*sorted({a.kind for a in agencies_of(rt, case)})] or [None]
    return list(dict.fromkeys(r for kind in kinds for r in stage.recipients(when, kind)))


def _tell_role(s: Session, rt: PartnershipRuntime, case: Case, role: str, now: datetime, when: str) -> None:
    """A named role the policy says must hear (e.g. a Director of Social Work before Stage 3)."""
    stage = rt.policy.stage(case.stage)
    label = next((n.label for n in stage.notify if n.role == role), role.replace("_", " "))
    addresses = role_addresses(rt, case, role)
    if addresses:
        notify(s, rt, case, "role_notice", now, to=addresses, role_label=label, when=when)
    else:
        _ask_business_team_to_route(s, rt, case, now, f"nobody in the directory holds the role '{label}'")


def _ask_business_team_to_route(s: Session, rt: PartnershipRuntime, case: Case, now: datetime,
                                problem: str) -> None:
    """Ask the business team to find who acts: which agencies on the form could not be matched,
    the candidates and why each was not chosen, and the command that settles it."""
    gaps = unrouted_parties(rt, case, case.stage)
    record_event(s, now, "system", "needs_routing", case=case, problem=problem, stage=case.stage,
                 unmatched=[g.named or f"{g.side} agency (not named)" for g in gaps if g.agency is None])
    unrouted = [{
        "side": "the raiser's agency" if g.side == "raiser" else "the other agency",
        "named": g.named or "(no agency named)", "email": g.email or "",
        "matched": g.agency.name if g.agency is not None else None, "why": g.match.evidence,
        "candidates": [{"name": c.agency.name, "why_not": c.why_not} for c in g.match.candidates],
    } for g in gaps]
    notify(s, rt, case, "routing_request", now, to=business_team(rt), problem=problem, unrouted=unrouted,
           command=f"mailflow cases assign {case.reference} other ADDRESS")


# ---------------------------------------------------------------------------- moving on

def escalate(s: Session, rt: PartnershipRuntime, case: Case, actor: Actor, now: datetime,
             reason: str, clock_start: datetime, automatic: bool = False) -> None:
    """Move to the next stage; the new stage's clock starts at `clock_start` (the deadline that
    ran out, or when a manual escalation was received). At the last stage: the final action,
    once per stage (asking again is refused: the case awaits the chair / the Board)."""
    if case.stage >= rt.policy.last_stage:
        if not final_alert(s, rt, case, actor, now, reason):
            given = next((e.at for e in reversed(case.events) if e.action == "final_alert"), None)
            raise InvalidTransition(
                f"the final alert for Stage {case.stage} was already given"
                + (f" on {long_instant(given)}" if given else "")
                + f"; the case is {AWAITING_CHAIR} until it is resolved or closed")
        return
    _transition(case, "escalate")
    for role in _roles(rt, case, rt.policy.stage(case.stage), "before_next_stage"):
        _tell_role(s, rt, case, role, now, "before_next_stage")
    previous = case.stage
    case.stage, case.stage_started_at, case.updated_at = previous + 1, clock_start, now
    case.resolved_at, case.outcome = None, None
    _event(s, case, actor, "escalated", now, from_stage=previous, to_stage=case.stage, reason=reason,
           automatic=automatic, clock_start=clock_start.isoformat())
    _start(s, rt, case, actor, now, previous_stage=previous, reason=reason, automatic=automatic)


def escalate_or_hold(s: Session, rt: PartnershipRuntime, case: Case, actor: Actor, now: datetime,
                     reason: str, clock_start: datetime) -> bool:
    """A stage's time ran out. When nobody can be reached at this stage nor at the next one,
    moving on would only reach nobody again: the case is held at its stage (said so in the audit
    trail), the business team is asked again to route it, and the escalation is tried again one
    stage timescale later. Otherwise it escalates. True when it escalated."""
    nxt = case.stage + 1
    if case.stage >= rt.policy.last_stage or reachable(rt, case, case.stage) or reachable(rt, case, nxt):
        escalate(s, rt, case, actor, now, reason, clock_start=clock_start, automatic=True)
        return True
    tier, next_tier = rt.policy.stage(case.stage).tier, rt.policy.stage(nxt).tier
    problem = (f"nobody to route to: no {tier} contact at Stage {case.stage} and no {next_tier} contact at "
               f"Stage {nxt} for the case's agencies, so the case is held at Stage {case.stage} until a "
               f"contact is assigned")
    retry = schedule_hold(s, rt.policy, case, now)
    case.updated_at = now
    _event(s, case, actor, "held", now, stage=case.stage, reason=reason, why=problem,
           next_try=retry.due_at.isoformat())
    _ask_business_team_to_route(s, rt, case, now, problem)
    return False


def final_alert(s: Session, rt: PartnershipRuntime, case: Case, actor: Actor, now: datetime,
                reason: str) -> bool:
    """The final action, once per case and stage (the ledger key is the stage's start): by the
    deadline, a reply's #escalate or `cases escalate`, whichever comes first (its own ledger kind,
    apart from the deadline's key). False when it was already given."""
    s.flush()
    if not ledger.claim(s, case.id, case.stage, "final", "final_alert_given", case.stage_started_at, now):
        return False
    chair = role_addresses(rt, case, "chair")
    _event(s, case, actor, "final_alert", now, reason=reason, stage=case.stage)
    s.flush()
    s.execute(update(Deadline).where(Deadline.case_id == case.id, Deadline.state == "pending",
                                     Deadline.action == "final_alert").values(state="cancelled", done_at=now))
    s.expire(case, ["deadlines"])
    notify(s, rt, case, "final_alert", now, to=[*business_team(rt), *chair], cc=tier_people(rt, case, case.stage),
           reason=reason)
    return True


def refuse_escalation_by(rt: PartnershipRuntime, case: Case, sender: str) -> str | None:
    """Why a reply's #escalate from `sender` is not honoured, or None. A manual escalation by email
    comes from someone who can act at the current stage (its tier's people), a raiser, or the
    business team; and whoever escalated the case into its current stage by reply or command
    cannot escalate it again until that stage's people have had their chance (their deadline,
    or their own #escalate). So one reply moves a case at most one stage, and a flood of
    #escalate from one manager cannot walk a case through the stages."""
    who = sender.lower()
    allowed = {a.lower() for a in [*tier_people(rt, case, case.stage), *raisers(case), *business_team(rt)]}
    if who not in allowed:
        return (f"#escalate at Stage {case.stage} is taken from the Stage {case.stage} "
                f"({rt.policy.stage(case.stage).tier.replace('_', ' ')}) contacts, the raiser or the "
                f"business team; you can add a #note instead")
    last = next((e for e in reversed(case.events) if e.action in ("escalated", "reopened", "opened")), None)
    if last is not None and last.action == "escalated" and not last.detail.get("automatic") \
            and last.actor.lower() == who and last.detail.get("to_stage") == case.stage:
        return (f"you escalated this case to Stage {case.stage} on {long_instant(last.at)}; the Stage "
                f"{case.stage} contacts have their chance first (the case moves on by itself when their "
                f"deadline passes)")
    return None


def resolve(s: Session, rt: PartnershipRuntime, case: Case, actor: Actor, now: datetime, outcome: str) -> None:
    _transition(case, "resolve")
    case.resolved_at, case.outcome, case.updated_at = now, outcome, now
    _event(s, case, actor, "resolved", now, outcome=outcome, stage=case.stage)
    schedule_confirmation(s, rt.policy, case, now)
    cc = business_team(rt) if rt.policy.stage(case.stage).copy_business_team else []
    notify(s, rt, case, "confirmation_request", now, to=_everyone_at_stage(rt, case), cc=cc,
           in_reply_to=actor.message_id, late=False)


def confirm(s: Session, rt: PartnershipRuntime, case: Case, actor: Actor, now: datetime) -> None:
    _transition(case, "confirm")
    case.closed_at, case.updated_at = now, now
    cancel_pending(s, case, now)
    _event(s, case, actor, "confirmed", now, stage=case.stage)
    cc = business_team(rt) if rt.policy.stage(case.stage).copy_business_team else []
    notify(s, rt, case, "confirmation_receipt", now, to=_everyone(case), cc=cc, in_reply_to=actor.message_id)


def hand_over_confirmation(s: Session, rt: PartnershipRuntime, case: Case, actor: Actor,
                           now: datetime) -> None:
    """Written confirmation was chased and still has not come: the business team takes it on.
    The case stays resolved (a late #confirmed still closes it) and shows as handed over."""
    case.updated_at = now
    _event(s, case, actor, "confirmation_handed_over", now, stage=case.stage)
    detail = (f"The outcome was agreed at Stage {case.stage}"
              + (f" on {long_instant(case.resolved_at)}" if case.resolved_at else "")
              + "; written confirmation was due, was chased, and has still not come. Please follow it "
                "up with the agencies; a #confirmed reply (or `mailflow cases note`) records it.")
    notify(s, rt, case, "case_update", now, to=business_team(rt), change=HANDED_OVER, detail=detail, by=None)


def withdraw(s: Session, rt: PartnershipRuntime, case: Case, actor: Actor, now: datetime, reason: str) -> None:
    _transition(case, "withdraw")
    case.closed_at, case.updated_at = now, now
    cancel_pending(s, case, now)
    _event(s, case, actor, "withdrawn", now, reason=reason)
    notify(s, rt, case, "case_update", now, to=_everyone(case), cc=business_team(rt),
           change="withdrawn", detail=reason, by=actor.address)


def reopen(s: Session, rt: PartnershipRuntime, case: Case, actor: Actor, now: datetime, reason: str) -> None:
    _transition(case, "reopen")
    case.closed_at, case.resolved_at, case.outcome = None, None, None
    case.stage_started_at, case.updated_at = now, now
    _event(s, case, actor, "reopened", now, reason=reason, stage=case.stage)
    _start(s, rt, case, actor, now, reason=reason)


def mark_urgent(s: Session, rt: PartnershipRuntime, case: Case, actor: Actor, now: datetime) -> None:
    _transition(case, "urgent")
    if case.urgent:
        _event(s, case, actor, "note", now, text="#urgent (the case was already urgent)")
        return
    case.urgent, case.updated_at = True, now
    _event(s, case, actor, "marked_urgent", now, stage=case.stage)
    if case.state == State.OPEN:
        schedule_stage(s, rt.policy, case, now, not_before=now)   # urgent timescales, from the stage's start
    elif case.state == State.RESOLVED:
        schedule_confirmation(s, rt.policy, case, now)
    notify(s, rt, case, "case_update", now, to=_everyone_at_stage(rt, case), cc=business_team(rt),
           change="marked urgent", detail="The policy's urgent timescales now apply.", by=actor.address)


def extend(s: Session, rt: PartnershipRuntime, case: Case, actor: Actor, now: datetime, days: int,
           reason: str) -> bool:
    """Move the current stage's deadlines by `days` working days, within what the policy allows."""
    _transition(case, "extend")
    limit = rt.policy.max_extension_days
    used = sum(int(e.detail.get("days", 0)) for e in case.events
               if e.action == "extended" and e.detail.get("stage") == case.stage)
    allowed = max(0, min(days, limit - used))
    if days <= 0 or allowed < days:
        detail = (f"Asked for {days} working day(s); the policy allows at most {limit} per stage and "
                  f"{used} already granted at Stage {case.stage}. No change.")
        _event(s, case, actor, "extension_refused", now, asked=days, limit=limit, used=used, reason=reason)
        notify(s, rt, case, "case_update", now, to=[actor.address], change="extension refused",
               detail=detail, by=actor.address, in_reply_to=actor.message_id)
        return False
    cal = rt.policy.calendar
    pending = [d for d in case.deadlines if d.state == "pending" and d.action != "remind"]
    cancel_pending(s, case, now)
    for d in pending:
        moved = cal.add_working_days(d.due_at, days)
        row = Deadline(case=case, stage=d.stage, step=d.step, action=d.action, due_at=moved.at,
                       rule=f"{d.rule}; extended by {days} working day(s) ({reason})", created_at=now,
                       skipped=list(d.skipped) + [[x.isoformat(), n] for x, n in moved.skipped])
        s.add(row)
        remind_at = cal.working_days_before(moved.at, rt.policy.reminder_days_before)
        if rt.policy.reminder_days_before and now < remind_at < moved.at:
            s.add(Deadline(case=case, stage=d.stage, step=d.step, action="remind", due_at=remind_at,
                           created_at=now, skipped=[], rule="reminder before the extended deadline"))
    case.updated_at = now
    _event(s, case, actor, "extended", now, days=days, stage=case.stage, reason=reason, limit=limit)
    s.flush()
    s.expire(case, ["deadlines"])
    notify(s, rt, case, "case_update", now, to=_everyone_at_stage(rt, case), cc=business_team(rt),
           change=f"extended by {days} working day(s)", detail=reason, by=actor.address,
           in_reply_to=actor.message_id)
    return True


def note(s: Session, case: Case, actor: Actor, now: datetime, text: str, verified: bool = True) -> None:
    _event(s, case, actor, "note" if verified else "unverified_note", now, text=text[:4000])


def assign(s: Session, rt: PartnershipRuntime, case: Case, actor: Actor, now: datetime, side: str,
           email: str) -> None:
    """`cases assign`: a new raiser, or a contact who acts at the current stage. A contact is
    recorded on the side of their agency (the raiser's when the directory places them there, or
    when only the raiser's side had nobody) and, on an open case, gets the stage's escalation."""
    _transition(case, "assign")
    address = address_of(email) or email.strip()
    if side == "raiser":
        add_participants(s, case, [address], "raiser", "raiser", None, case.fields.get("raiser_agency"))
        _event(s, case, actor, "assigned", now, side=side, email=address)
        return
    tier = rt.policy.stage(case.stage).tier
    agency = rt.directory.match_agency(email=address).agency
    raiser_agency = next((p.agency for p in parties(rt, case) if p.side == "raiser"), None)
    gaps = unrouted_parties(rt, case, case.stage)
    if (agency is not None and raiser_agency is not None and agency.name == raiser_agency.name) or \
            (gaps and all(g.side == "raiser" for g in gaps)):
        side = "raiser"
    new = address.lower() not in {p.lower() for p in tier_people(rt, case, case.stage)}
    add_participants(s, case, [address], tier, side, case.stage, agency.name if agency else None)
    _event(s, case, actor, "assigned", now, side=side, email=address, stage=case.stage,
           agency=agency.name if agency else None)
    if new and case.state == State.OPEN:
        came = next((e for e in reversed(case.events)
                     if e.action == "escalated" and e.detail.get("to_stage") == case.stage), None)
        detail = came.detail if came is not None else {}
        _send_escalation(s, rt, case, now, [address], detail.get("from_stage"), detail.get("reason"),
                         bool(detail.get("automatic")))


def _everyone_at_stage(rt: PartnershipRuntime, case: Case) -> list[str]:
    return list(dict.fromkeys([*tier_people(rt, case, case.stage), *raisers(case)]))


def _everyone(case: Case) -> list[str]:
    return list(dict.fromkeys(p.email for p in case.participants))
