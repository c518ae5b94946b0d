"""Who is told what about a case, and the template context every notice shares."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from mailflow.db.models import Case, Participant
from mailflow.directory import Agency
from mailflow.pipeline.outbox import queue_mail

if TYPE_CHECKING:
    from mailflow.app import PartnershipRuntime

STEP_LABELS = {"raise": "Escalation raised", "respond": "Response", "resolve": "Resolution",
               "confirm": "Written confirmation of the outcome", "final": "Final-stage review"}


def agencies_of(rt: PartnershipRuntime, case: Case) -> list[Agency]:
    """The directory agencies a case involves (raiser's and the other side's)."""
    named: list[tuple[str | None, str | None]] = [(case.fields.get("raiser_agency"), None)]
    named += [(o.get("agency"), o.get("email")) for o in case.fields.get("others_involved") or []
              if isinstance(o, dict)]
    named += [(p.agency, p.email) for p in case.participants if p.side in ("raiser", "other")]
    found: dict[str, Agency] = {}
    for name, email in named:
        agency = rt.directory.match_agency(name, email)
        if agency is not None:
            found.setdefault(agency.name, agency)
    return list(found.values())


def business_team(rt: PartnershipRuntime) -> list[str]:
    return list(dict.fromkeys([*rt.config.business_team, *rt.directory.business_team]))


def role_addresses(rt: PartnershipRuntime, case: Case, role: str) -> list[str]:
    """Addresses for a role key: the business team, a partnership role (chair) or agency contacts."""
    if role == "business_team":
        return business_team(rt)
    return [c.email for c in rt.directory.contacts(role, agencies_of(rt, case))]


def tier_people(rt: PartnershipRuntime, case: Case, stage: int) -> list[str]:
    """Who acts at `stage`: the directory's contacts of that tier in the case's agencies,
    and anyone already recorded on the case for that stage."""
    tier = rt.policy.stage(stage).tier
    people = [c.email for c in rt.directory.contacts(tier, agencies_of(rt, case))]
    people += [p.email for p in case.participants if p.stage == stage and p.side != "raiser"]
    return list(dict.fromkeys(people))


def raisers(case: Case) -> list[str]:
    return [p.email for p in case.participants if p.role == "raiser"]


def add_participants(s: Session, case: Case, emails: Iterable[str], role: str, side: str,
                     stage: int | None, agency: str | None = None) -> None:
    known = {(p.email.lower(), p.role) for p in case.participants}
    for email in emails:
        if (email.lower(), role) not in known:
            case.participants.append(Participant(email=email, role=role, side=side, stage=stage,
                                                 agency=agency))
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
    """Queue one notice about a case; False when it had nobody to go to."""
    s.flush()
    row = queue_mail(s, rt, kind=kind, to=list(to), cc=list(cc), now=now, case=case,
                     in_reply_to=in_reply_to, auto_submitted=auto_submitted,
                     context=case_context(rt, case, **extra))
    return row is not None
