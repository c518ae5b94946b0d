"""Who is told what about a case, and the template context every notice shares."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from mailflow.addresses import address_key, address_of, unique_addresses
from mailflow.composer import Attachment
from mailflow.db.models import Case, Participant
from mailflow.directory import Agency, AgencyMatch
from mailflow.pipeline import case_file
from mailflow.pipeline.outbox import queue_mail

if TYPE_CHECKING:
    from mailflow.app import PartnershipRuntime

STEP_LABELS = {"raise": "Escalation raised", "respond": "Response", "resolve": "Resolution",
               "confirm": "Written confirmation of the outcome", "final": "Final-stage review"}


@dataclass(frozen=True)
class Party:
    """An agency a case involves, as the form names it: the raiser's, or another one."""

    side: str               # "raiser" | "other"
    named: str | None       # the agency as the form words it
    email: str | None       # the named person's address
    match: AgencyMatch      # what the directory made of it

    @property
    def agency(self) -> Agency | None:
        return self.match.agency


@dataclass(frozen=True)
class StagePerson:
    """Someone who acts at a stage, and for which side and agency."""

    email: str
    name: str
    side: str               # "raiser" | "other" | "partnership"
    agency: str | None


def parties(rt: PartnershipRuntime, case: Case) -> list[Party]:
    """The raiser's agency and each other agency named on the form, each matched on strong
    evidence only (the person's address, then the exact name: see `Directory.match_agency`)."""
    fields = case.fields
    raiser = next((p.email for p in case.participants if p.role == "raiser"), None) or fields.get("raiser_email")
    named: list[tuple[str, str | None, str | None]] = []
    if fields.get("raiser_agency") or raiser:
        named.append(("raiser", fields.get("raiser_agency"), raiser))
    named += [("other", o.get("agency"), o.get("email")) for o in fields.get("others_involved") or []
              if isinstance(o, dict) and (o.get("agency") or o.get("email"))]
    return [Party(side, name, email, rt.directory.match_agency(name, email)) for side, name, email in named]


def _sided_agencies(rt: PartnershipRuntime, case: Case) -> list[tuple[str, Agency]]:
    """(side, agency) for the parties the directory matched, then for anyone assigned to the case
    at a stage whose address the directory knows; each agency once, the raiser's side first."""
    found: dict[str, tuple[str, Agency]] = {}
    for party in parties(rt, case):
        if party.agency is not None:
            found.setdefault(party.agency.name, (party.side, party.agency))
    for p in case.participants:
        if p.stage is not None and p.side in ("raiser", "other"):
            agency = rt.directory.match_agency(email=p.email).agency
            if agency is not None:
                found.setdefault(agency.name, (p.side, agency))
    return list(found.values())


def agencies_of(rt: PartnershipRuntime, case: Case) -> list[Agency]:
    """The directory agencies a case involves (raiser's and the other side's)."""
    return [agency for _, agency in _sided_agencies(rt, case)]


def business_team(rt: PartnershipRuntime) -> list[str]:
    """The business team's addresses, each once however config and directory spell it."""
    return unique_addresses([*rt.config.business_team, *rt.directory.business_team])


def role_addresses(rt: PartnershipRuntime, case: Case, role: str) -> list[str]:
    """Addresses for a role key: the business team, a partnership role (chair) or agency contacts."""
    if role == "business_team":
        return business_team(rt)
    return unique_addresses(c.email for c in rt.directory.contacts(role, agencies_of(rt, case)))


def tier_contacts(rt: PartnershipRuntime, case: Case, stage: int) -> list[StagePerson]:
    """Who acts at `stage`: the directory's contacts of that tier in the case's agencies (on the
    side their agency is on), the partnership's own holders of that tier, and anyone already
    recorded on the case for that stage. Each address once."""
    tier = rt.policy.stage(stage).tier
    people = [StagePerson(c.email, c.name, side, agency.name)
              for side, agency in _sided_agencies(rt, case) for c in agency.contacts_for(tier)]
    people += [StagePerson(c.email, c.name, "partnership", None) for c in rt.directory.roles.get(tier, ())]
    people += [StagePerson(p.email, p.name or "", p.side, p.agency) for p in case.participants
               if p.stage == stage and p.role == tier]
    unique: dict[str, StagePerson] = {}
    for person in people:
        unique.setdefault(address_key(person.email) or person.email.lower(), person)
    return list(unique.values())


def tier_people(rt: PartnershipRuntime, case: Case, stage: int) -> list[str]:
    """The addresses of `tier_contacts`."""
    return [p.email for p in tier_contacts(rt, case, stage)]


def unrouted_parties(rt: PartnershipRuntime, case: Case, stage: int) -> list[Party]:
    """The parties nobody acts for at `stage`: the directory did not match their agency, or it has
    no contact of the stage's tier, and nobody was assigned for them (an assigned contact counts
    for a party unless their agency is another matched party's on the same side)."""
    tier = rt.policy.stage(stage).tier
    if rt.directory.roles.get(tier):
        return []   # the partnership itself acts at this tier (a board, the chair)
    everyone = parties(rt, case)
    assigned = [p for p in case.participants if p.stage == stage and p.role == tier]
    gaps = []
    for party in everyone:
        if party.agency is not None and party.agency.contacts_for(tier):
            continue
        elsewhere = {q.agency.name for q in everyone if q is not party and q.side == party.side and q.agency}
        if any(p.side == party.side and p.agency not in elsewhere for p in assigned):
            continue
        gaps.append(party)
    return gaps


def raisers(case: Case) -> list[str]:
    return [p.email for p in case.participants if p.role == "raiser"]


def add_participants(s: Session, case: Case, emails: Iterable[str], role: str, side: str,
                     stage: int | None, agency: str | None = None, name: str | None = None) -> None:
    """Record people on the case, each address once per role ("Name <a@x>" is kept as a@x)."""
    known = {(p.email.lower(), p.role) for p in case.participants}
    for text in emails:
        email = address_of(text) or text.strip()
        if email and (email.lower(), role) not in known:
            case.participants.append(Participant(email=email, role=role, side=side, stage=stage,
                                                 agency=agency, name=name or None))
            case.note_agency(side, agency)
            known.add((email.lower(), role))


def case_context(rt: PartnershipRuntime, case: Case, **extra: Any) -> dict[str, Any]:
    pending = sorted((d for d in case.deadlines if d.state == "pending" and d.action != "remind"),
                     key=lambda d: d.due_at)
    return {
        "case": case,
        "stage": rt.policy.stage(case.stage),
        "policy": rt.policy,
        "deadlines": [{"step": d.step, "step_label": STEP_LABELS.get(d.step, d.step.title()),
                       "due": d.due_at, "rule": d.rule, "action": d.action} for d in pending],
        **extra,
    }


def notify(s: Session, rt: PartnershipRuntime, case: Case, kind: str, now: datetime, *,
           to: Iterable[str], cc: Iterable[str] = (), in_reply_to: str | None = None,
           auto_submitted: str = "auto-generated", **extra: Any) -> bool:
    """Queue one notice about a case; False when it had nobody to go to. Escalations, business
    copies and final alerts carry the case file: its details in the body, the form attached."""
    if case.id is None:
        s.flush()   # a case opened in this transaction: its id goes in the outbox row
    attachments: tuple[Attachment, ...] = ()
    if kind in case_file.KINDS:
        extra["case_file"], attachments = case_file.case_file(s, rt, case)
    row = queue_mail(s, rt, kind=kind, to=list(to), cc=list(cc), now=now, case=case,
                     in_reply_to=in_reply_to, auto_submitted=auto_submitted,
                     context=case_context(rt, case, **extra), attachments=attachments)
    return row is not None
