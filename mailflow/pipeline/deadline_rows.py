"""Turn a policy's deadline specs into deadline rows (the sweeper's work list) for a case."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from mailflow.core.deadlines import (
    DeadlineSpec,
    confirm_deadline,
    final_deadline,
    handover_deadline,
    hold_deadline,
    stage_deadlines,
)
from mailflow.core.policy import Policy
from mailflow.db.models import Case, Deadline


def action_for(spec: DeadlineSpec, policy: Policy) -> str:
    """What the sweeper does when the spec's time runs out."""
    if spec.step == "confirm":
        return "chase"
    if spec.step == "final":
        return "final_alert"
    if spec.escalates:
        return "final_alert" if spec.stage == policy.last_stage else "escalate"
    return "overdue"


def specs_for_stage(policy: Policy, case: Case) -> list[DeadlineSpec]:
    specs = stage_deadlines(policy, case.stage, case.stage_started_at, case.opened_at, case.urgent)
    # Without this the raiser was told "raise overdue" two days after raising.
    specs = [d for d in specs if not d.met_on_opening]
    specs = [_own_share(policy, case, d) for d in specs]
    if case.stage == policy.last_stage:
        escalating = next((d for d in specs if d.escalates), None)
        final = final_deadline(policy, case.stage_started_at, escalating.due if escalating else None,
                               case.urgent)
        specs = [d for d in specs if not d.escalates] + [final]
    return specs


def _own_share(policy: Policy, case: Case, spec: DeadlineSpec) -> DeadlineSpec:
    """A stage whose timescale counts from the case start (Shropshire: 2 / 4 / 5 / 7 / 9 working
    days) keeps at least its own share of it (4 - 2 = 2 working days for Stage 2) from when it
    actually started. On the policy's own path this changes nothing; after an extension, or a
    reopening, it stops a stage starting already out of time and the case tumbling through
    every later stage in one sweep."""
    if spec.counts_from != "case_start" or case.stage <= 1:
        return spec
    prev = policy.stage(case.stage - 1).escalating_step
    prev_days = prev.effective_days(case.urgent) if prev is not None and prev.counts_from == "case_start" else None
    if prev_days is None:
        return spec
    floor = policy.calendar.add_working_days(case.stage_started_at, max(spec.days - prev_days, 0))
    if floor.at <= spec.due:
        return spec
    return replace(spec, due=floor.at, skipped=floor.skipped,
                   rule=f"{spec.rule}; at least {max(spec.days - prev_days, 0)} working day(s) from when "
                        f"Stage {case.stage} started (it started late)")


def write_specs(s: Session, policy: Policy, case: Case, specs: list[DeadlineSpec], now: datetime,
                shift: timedelta | None = None) -> list[Deadline]:
    """One row per deadline, plus a reminder row before each (at the start of a working day)."""
    rows = []
    cal = policy.calendar
    for spec in specs:
        due = spec.due + (shift or timedelta())
        rows.append(Deadline(case=case, stage=spec.stage, step=spec.step, action=action_for(spec, policy),
                             due_at=due, rule=spec.rule, created_at=now,
                             skipped=[[d.isoformat(), name] for d, name in spec.skipped]))
        if policy.reminder_days_before > 0 and spec.step != "final":
            remind_at = cal.working_days_before(due, policy.reminder_days_before)
            if now < remind_at < due:
                rows.append(Deadline(
                    case=case, stage=spec.stage, step=spec.step, action="remind", due_at=remind_at,
                    created_at=now, skipped=[],
                    rule=f"reminder {policy.reminder_days_before} working day(s) before the {spec.step} "
                         f"deadline, at the start of the working day ({cal.opens:%H:%M})"))
    s.add_all(rows)
    return rows


def schedule_stage(s: Session, policy: Policy, case: Case, now: datetime,
                   not_before: datetime | None = None) -> list[Deadline]:
    """The current stage's deadlines; with `not_before`, any already past are due then instead
    (timescales shortened mid-stage, e.g. by #urgent: the stage is over now, and the next stage's
    clock starts now rather than at an instant that passed before anyone asked)."""
    cancel_pending(s, case, now)
    specs = specs_for_stage(policy, case)
    if not_before is not None:
        specs = [d if d.due >= not_before else replace(
            d, due=not_before, rule=f"{d.rule}; already past when the timescale changed, so due at once")
            for d in specs]
    return write_specs(s, policy, case, specs, now)


def schedule_confirmation(s: Session, policy: Policy, case: Case, now: datetime) -> list[Deadline]:
    cancel_pending(s, case, now)
    assert case.resolved_at is not None
    spec = confirm_deadline(policy, case.stage, case.resolved_at, case.urgent)
    return write_specs(s, policy, case, [spec], now) if spec else []


def schedule_handover(s: Session, policy: Policy, case: Case, chased_due: datetime,
                      now: datetime) -> Deadline | None:
    """After the chase: when the case goes to the business team if confirmation still has not
    come. No reminder before it: the chase was the reminder."""
    spec = handover_deadline(policy, case.stage, chased_due, case.urgent)
    return _single(s, case, spec, "hand_over", now) if spec else None


def schedule_hold(s: Session, policy: Policy, case: Case, now: datetime) -> Deadline:
    """A held case's next try: its other pending deadlines give way to one repeated escalation."""
    cancel_pending(s, case, now)
    return _single(s, case, hold_deadline(policy, case.stage, now, case.urgent), "escalate", now)


def _single(s: Session, case: Case, spec: DeadlineSpec, action: str, now: datetime) -> Deadline:
    row = Deadline(case=case, stage=spec.stage, step=spec.step, action=action, due_at=spec.due,
                   rule=spec.rule, created_at=now, skipped=[[d.isoformat(), name] for d, name in spec.skipped])
    s.add(row)
    return row


# session.info key: ids of the cases this transaction inserted (`mark_new_case`): their deadlines
# are all in memory, so cancelling them needs no statement.
NEW_CASES = "mailflow.new_cases"


def mark_new_case(s: Session, case: Case) -> None:
    """`case` was inserted in this transaction with its deadlines collection loaded (empty)."""
    s.info.setdefault(NEW_CASES, set()).add(case.id)


def cancel_pending(s: Session, case: Case, now: datetime) -> None:
    if case.id is not None and case.id in s.info.get(NEW_CASES, ()):
        for d in case.deadlines:
            if d.state == "pending":
                d.state, d.done_at = "cancelled", now
        return
    s.flush()
    s.execute(update(Deadline).where(Deadline.case_id == case.id, Deadline.state == "pending")
              .values(state="cancelled", done_at=now))
    s.expire(case, ["deadlines"])
