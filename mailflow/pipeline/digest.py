"""The business team's digest: what is open, what falls due, and what needs a person (every
stalled case, whatever its age: see pipeline/stalls.py), and the last week's events to check.

It names cases by reference, stage and agency only: no personal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.core.lifecycle import State
from mailflow.db.models import Case, Deadline, Event, InboundMessage, OutboxMessage
from mailflow.pipeline import schedules
from mailflow.pipeline.notices import business_team
from mailflow.pipeline.outbox import queue_mail
from mailflow.pipeline.schedules import due_period, is_claimed
from mailflow.pipeline.stalls import stall_of

if TYPE_CHECKING:
    from mailflow.app import App, PartnershipRuntime

LOOKBACK = timedelta(days=7)
ATTENTION = ("needs_routing", "unverified_reply", "final_alert", "bounced", "extension_refused")


@dataclass(frozen=True)
class Digest:
    prefix: str
    subject: str
    text: str
    html: str
    context: dict[str, Any]


def digest_context(rt: PartnershipRuntime, now: datetime) -> dict[str, Any]:
    with rt.app.db.transaction() as s:
        return _context(s, rt, now)


def _context(s: Session, rt: PartnershipRuntime, now: datetime) -> dict[str, Any]:
    cal = rt.policy.calendar
    horizon = cal.add_working_days(now, 5).at
    since = now - LOOKBACK
    if True:
        cases = s.scalars(select(Case).where(Case.partnership == rt.prefix).order_by(Case.id)).all()
        live = [c for c in cases if c.state in (State.OPEN, State.RESOLVED, State.INCOMPLETE)]
        due = s.execute(select(Deadline, Case.reference).join(Case, Deadline.case_id == Case.id).where(
            Case.partnership == rt.prefix, Deadline.state == "pending", Deadline.action != "remind",
            Deadline.due_at <= horizon).order_by(Deadline.due_at)).all()
        attention = s.execute(select(Event, Case.reference).join(Case, Event.case_id == Case.id).where(
            Case.partnership == rt.prefix, Event.action.in_(ATTENTION), Event.at > since)
            .order_by(Event.at)).all()
        quarantined = s.scalar(select(InboundMessage.id).where(
            InboundMessage.partnership == rt.prefix, InboundMessage.outcome == "quarantined",
            InboundMessage.received_at > since).limit(1)) is not None
        quarantined_count = len(s.scalars(select(InboundMessage.id).where(
            InboundMessage.partnership == rt.prefix, InboundMessage.outcome == "quarantined",
            InboundMessage.received_at > since)).all()) if quarantined else 0
        failed = len(s.scalars(select(OutboxMessage.id).where(
            OutboxMessage.partnership == rt.prefix, OutboxMessage.state.in_(("failed", "bounced")),
            OutboxMessage.created_at > since)).all())
        stalled = [(c, stall) for c in live if (stall := stall_of(rt, c)) is not None]
        by_stage: dict[int, int] = {}
        for c in live:
            if c.state == State.OPEN:
                by_stage[c.stage] = by_stage.get(c.stage, 0) + 1
        return {
            "now": now, "since": since,
            "open_by_stage": sorted(by_stage.items()),
            "resolved_awaiting": [c.reference for c in live if c.state == State.RESOLVED],
            "incomplete": [c.reference for c in live if c.state == State.INCOMPLETE],
            "urgent": [c.reference for c in live if c.urgent],
            # References, stages and what is awaited only: no personal data in a digest.
            "stalled": [{"reference": c.reference, "stage": c.stage, "kind": st.kind, "what": st.label,
                         "since": st.since} for c, st in stalled],
            "due": [{"reference": ref, "stage": d.stage, "step": d.step, "action": d.action, "due": d.due_at,
                     "overdue": d.due_at <= now} for d, ref in due],
            "attention": [{"reference": ref, "what": e.action.replace("_", " "), "at": e.at,
                           "detail": e.detail.get("problem") or "; ".join(e.detail.get("reasons", []))}
                          for e, ref in attention],
            "closed_recently": [c.reference for c in cases
                                if c.state in (State.CLOSED, State.WITHDRAWN) and c.closed_at and c.closed_at > since],
            "quarantined": quarantined_count, "failed_mail": failed,
        }


def render_digests(app: App, now: datetime) -> list[Digest]:
    out = []
    for rt in app.runtimes():
        ctx = digest_context(rt, now)
        mail = rt.renderer.render("digest", {"partnership": rt.config, "policy": rt.policy, "late_since": None, **ctx})
        out.append(Digest(rt.prefix, mail.subject, mail.text, mail.html, ctx))
    return out


def send_due_digests(app: App, now: datetime) -> list[str]:
    """Each partnership's scheduled digest, once per period across every worker: the period is
    claimed in the transaction that queues the mail. Returns the prefixes sent by this call."""
    trigger = app.config.daemon.digest_cron.trigger   # built when the config loaded
    period = due_period(trigger, now)
    sent: list[str] = []
    if period is None:
        return sent
    for rt in app.runtimes():
        with app.db.transaction() as s:
            if is_claimed(s, rt.prefix, "digest", period.key):   # the usual case: no insert tried
                continue
        with app.db.transaction() as s:
            if not schedules.claim(s, rt.prefix, "digest", period.key, period.due_at, now, late=period.late):
                continue   # another worker has it
            ctx = _context(s, rt, now)
            ctx["late_since"] = period.due_at if period.late else None
            queue_mail(s, rt, kind="digest", to=business_team(rt), now=now, context=ctx)
            sent.append(rt.prefix)
    return sent


def send_digests(app: App, now: datetime) -> int:
    """Send a digest now, outside the schedule (`mailflow digest`); recorded as a manual period,
    so the next digest's "new since the last digest" counts from it."""
    sent = 0
    for rt in app.runtimes():
        with app.db.transaction() as s:
            if not schedules.claim(s, rt.prefix, "digest", f"manual {now.isoformat()}", now, now):
                continue
            ctx = _context(s, rt, now)
            ctx["late_since"] = None
            if queue_mail(s, rt, kind="digest", to=business_team(rt), now=now, context=ctx) is not None:
                sent += 1
    return sent
