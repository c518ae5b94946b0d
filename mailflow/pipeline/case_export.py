"""Everything held about one case, for a subject-access request: its fields and people, its
deadlines and why, the notices fired, every message in and out with its raw bytes, and its
audit trail. Gathered in one transaction that also records the export as a read of the case's
personal data; the command line writes it as a zip or a folder named by the case reference only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.db.models import Case, Deadline, Event, InboundMessage, LedgerEntry, OutboxMessage, Participant
from mailflow.errors import MailflowError
from mailflow.pipeline.audit import record_read


@dataclass(frozen=True)
class CaseExport:
    reference: str
    files: dict[str, bytes]     # path inside the export (under the reference) -> content


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def export_case(s: Session, reference: str, who: str, now: datetime, via: str = "export-case") -> CaseExport:
    case = s.scalars(select(Case).where(Case.reference == reference.upper())).first()
    if case is None:
        raise MailflowError(f"no case {reference}")
    ref = case.reference
    record_read(s, now, who, via, case=case)
    files: dict[str, bytes] = {}
    inbound = list(s.scalars(select(InboundMessage).where(InboundMessage.case_id == case.id)
                             .order_by(InboundMessage.id)))
    outbox = list(s.scalars(select(OutboxMessage).where(OutboxMessage.case_id == case.id).order_by(OutboxMessage.id)))
    received, sent = [], []
    for n, m in enumerate(inbound, 1):
        name = f"messages/in-{n:03d}.eml"
        files[name] = bytes(m.raw)
        received.append({"file": name, "received_at": _iso(m.received_at), "sender": m.sender,
                         "message_id": m.message_id, "kind": m.kind, "outcome": m.outcome, "reason": m.reason,
                         "size": m.size, "sha256": m.sha256})
    for n, o in enumerate(outbox, 1):
        name = f"messages/out-{n:03d}.eml"
        files[name] = bytes(o.raw)
        sent.append({"file": name, "kind": o.kind, "recipients": o.recipients, "subject": o.subject,
                     "message_id": o.message_id, "state": o.state, "created_at": _iso(o.created_at),
                     "sent_at": _iso(o.sent_at), "attempts": o.attempts, "last_error": o.last_error})
    participants = s.scalars(select(Participant).where(Participant.case_id == case.id).order_by(Participant.id))
    deadlines = s.scalars(select(Deadline).where(Deadline.case_id == case.id).order_by(Deadline.due_at, Deadline.id))
    ledger = s.scalars(select(LedgerEntry).where(LedgerEntry.case_id == case.id).order_by(LedgerEntry.id))
    s.flush()   # the read just recorded is part of the trail exported
    events = s.scalars(select(Event).where(Event.case_id == case.id).order_by(Event.id))
    record: dict[str, Any] = {
        "reference": ref, "exported_at": _iso(now), "exported_by": who,
        "case": {"partnership": case.partnership, "policy": case.policy, "state": case.state, "stage": case.stage,
                 "urgent": case.urgent, "opened_at": _iso(case.opened_at),
                 "stage_started_at": _iso(case.stage_started_at), "resolved_at": _iso(case.resolved_at),
                 "closed_at": _iso(case.closed_at), "outcome": case.outcome, "missing": case.missing,
                 "fields": case.fields},
        "participants": [{"email": p.email, "name": p.name, "role": p.role, "side": p.side, "agency": p.agency,
                          "stage": p.stage} for p in participants],
        "deadlines": [{"stage": d.stage, "step": d.step, "action": d.action, "due_at": _iso(d.due_at),
                       "state": d.state, "rule": d.rule, "skipped": d.skipped, "created_at": _iso(d.created_at),
                       "done_at": _iso(d.done_at)} for d in deadlines],
        "notices_fired": [{"stage": e.stage, "step": e.step, "kind": e.kind, "due_at": _iso(e.due_at),
                           "fired_at": _iso(e.fired_at)} for e in ledger],
        "messages_received": received,
        "messages_sent": sent,
        "audit": [{"seq": e.seq, "at": _iso(e.at), "actor": e.actor, "action": e.action, "detail": e.detail,
                   "inbound_id": e.inbound_id, "hash": e.hash} for e in events],
    }
    files["case.json"] = json.dumps(record, indent=2, ensure_ascii=False, default=str).encode("utf-8")
    files["README.txt"] = (
        f"Everything mailflow holds about case {ref}, exported {_iso(now)} by {who}.\n\n"
        "case.json      the case, its form's fields, the people involved, deadlines (with why each\n"
        "               is due when it is), notices fired, messages in and out, the audit trail\n"
        "messages/      each message received (in-NNN.eml) and sent (out-NNN.eml), raw, as held\n"
        "               (attachments inside); case.json lists them in order\n\n"
        "The audit entries carry their hash: `mailflow audit verify` checks the chain they belong to.\n"
        "An audit entry's seq may be missing for the export itself (it is sealed as this export commits).\n"
    ).encode()
    return CaseExport(ref, files)
