"""Deadlines of a policy's stages from the instants their clocks start (pure: no wall clock)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from mailflow.core.calendar import Due, WorkingCalendar
from mailflow.core.policy import FINAL_NOTIFY, Policy, Stage, Step

FINAL_STEP = "final"  # DeadlineSpec.step of the final action
FALLBACK_REPEAT_DAYS = 5  # a stage without an escalating timescale repeats a routing request this often


@dataclass(frozen=True)
class DeadlineSpec:
    stage: int
    step: str  # a Step name, or "final"
    due: datetime  # UTC-aware
    days: int
    urgent: bool  # the case is urgent (its urgent timescales apply: whichever is less)
    counts_from: str  # "stage_start" | "case_start" | "resolution"
    escalates: bool  # when it runs out the stage is over
    rule: str  # one human sentence
    skipped: tuple[tuple[date, str], ...]  # bank holidays and closures passed over
    notify: tuple[str, ...]  # role keys copied in (conditional ones included: see Stage.recipients)

    @property
    def met_on_opening(self) -> bool:
        """A `raise` step (put the matter to the other side, e.g. Redbridge's "within two working
        days") is met when the case opens: the form is the raising, and mailflow sends the matter
        to the other side's people (or asks the business team to route it) at once. So it is
        never chased."""
        return self.step == "raise" and not self.escalates


def _day(d: date) -> str:
    return f"{d:%a} {d.day} {d:%b %Y}"


def _within(days: int) -> str:
    if days == 0:
        return "on the same working day as"
    return f"within {days} working day{'s' if days != 1 else ''} of"


def _origin(counts_from: str, stage: int) -> str:
    return {
        "stage_start": f"Stage {stage} starting",
        "case_start": "the case starting",
        "resolution": "the resolution",
    }[counts_from]


def _rule(what: str, days: int, counts_from: str, stage: int, due: Due,
          cal: WorkingCalendar, urgent: bool) -> str:
    urgent_note = " (urgent timescale)" if urgent else ""
    return (f"{what} {_within(days)} {_origin(counts_from, stage)}{urgent_note} "
            f"(received {_day(due.received)}), by close of business {cal.close_of_business:%H:%M}")


def _notify(stage: Stage, step: Step) -> tuple[str, ...]:
    """Who is copied in at this stage, plus, on the escalating step, who must hear before the
    next stage (conditional roles included: `Stage.recipients` filters by agency kind)."""
    roles = stage.recipients("stage_start", "*")
    if step.escalates:
        roles += stage.recipients("before_next_stage", "*")
    return tuple(dict.fromkeys(roles))


def _spec(policy: Policy, stage: Stage, step: Step, origin: datetime, urgent: bool) -> DeadlineSpec:
    days = step.effective_days(urgent)
    assert days is not None
    applied = urgent and days != step.days
    due = policy.calendar.add_working_days(origin, days)
    return DeadlineSpec(
        stage=stage.number, step=step.name, due=due.at, days=days, urgent=urgent,
        counts_from=step.counts_from, escalates=step.escalates,
        rule=_rule(step.name, days, step.counts_from, stage.number, due, policy.calendar, applied),
        skipped=due.skipped, notify=_notify(stage, step),
    )


def stage_deadlines(policy: Policy, stage: int, stage_start: datetime, case_start: datetime,
                    urgent: bool) -> list[DeadlineSpec]:
    """Every non-confirm step of `stage` with a timescale, in the policy's order."""
    s = policy.stage(stage)
    out = []
    for step in s.steps:
        if step.name == "confirm" or step.days is None:
            continue
        origin = case_start if step.counts_from == "case_start" else stage_start
        out.append(_spec(policy, s, step, origin, urgent))
    return out


def confirm_deadline(policy: Policy, stage: int, resolved_at: datetime,
                     urgent: bool) -> DeadlineSpec | None:
    """When written confirmation of a resolution reached at `stage` is due, if the policy says."""
    s = policy.stage(stage)
    step = s.step("confirm")
    if step is None or step.days is None:
        return None
    return _spec(policy, s, step, resolved_at, urgent)


def handover_deadline(policy: Policy, stage: int, chased_due: datetime, urgent: bool) -> DeadlineSpec | None:
    """Written confirmation was chased when it fell due at `chased_due`; if it still has not come
    within the confirmation timescale again, the case is handed to the business team."""
    s = policy.stage(stage)
    step = s.step("confirm")
    if step is None or step.days is None:
        return None
    days = step.effective_days(urgent)
    assert days is not None
    due = policy.calendar.add_working_days(chased_due, days)
    return DeadlineSpec(
        stage=stage, step=step.name, due=due.at, days=days, urgent=urgent, counts_from="resolution",
        escalates=False,
        rule=(f"hand the case to the business team if written confirmation has still not come "
              f"{_within(days)} the chase (chased {_day(due.received)}), by close of business "
              f"{policy.calendar.close_of_business:%H:%M}"),
        skipped=due.skipped, notify=("business_team",),
    )


def hold_deadline(policy: Policy, stage: int, held_at: datetime, urgent: bool) -> DeadlineSpec:
    """A case held at `stage` because nobody can be reached there or at the next stage: the
    routing request is repeated, and the escalation tried again, one stage timescale later."""
    s = policy.stage(stage)
    step = s.escalating_step
    days = step.effective_days(urgent) if step is not None else None
    days = days if days is not None else FALLBACK_REPEAT_DAYS
    due = policy.calendar.add_working_days(held_at, days)
    return DeadlineSpec(
        stage=stage, step=step.name if step is not None else "resolve", due=due.at, days=days,
        urgent=urgent, counts_from="stage_start", escalates=True,
        rule=(f"held at Stage {stage}: nobody to route to there or at the next stage; the routing "
              f"request is repeated and the escalation tried again {_within(days)} the hold "
              f"(held {_day(due.received)}), until a contact is assigned"),
        skipped=due.skipped, notify=("business_team",),
    )


def final_deadline(policy: Policy, last_stage_start: datetime, escalating_due: datetime | None,
                   urgent: bool) -> DeadlineSpec:
    """The final action: at the last stage's escalating deadline, else `final.days` after the
    last stage starts."""
    stage = policy.stage(policy.last_stage)
    cal = policy.calendar
    if policy.final.days is None:
        assert escalating_due is not None
        due = cal.add_working_days(escalating_due, 0)
        days = 0
        rule = (f"final action ({policy.final.kind} the business team and the chair) when Stage "
                f"{stage.number}'s time runs out, at close of business "
                f"{cal.close_of_business:%H:%M} on {_day(due.received)}")
    else:
        days = policy.final.days
        due = cal.add_working_days(last_stage_start, days)
        rule = _rule(f"final action ({policy.final.kind} the business team and the chair)", days,
                     "stage_start", stage.number, due, cal, False)
    return DeadlineSpec(
        stage=stage.number, step=FINAL_STEP, due=due.at, days=days, urgent=urgent,
        counts_from="stage_start", escalates=True, rule=rule, skipped=due.skipped,
        notify=FINAL_NOTIFY,
    )


def timeline(policy: Policy, start: datetime, urgent: bool) -> list[DeadlineSpec]:
    """The path where nobody resolves anything: stage 1 starts at `start`, each next stage at the
    previous stage's escalating deadline, ending with the final action."""
    out: list[DeadlineSpec] = []
    stage_start = start
    for stage in policy.stages:
        specs = stage_deadlines(policy, stage.number, stage_start, start, urgent)
        out.extend(specs)
        escalating = next((d for d in specs if d.escalates), None)
        if stage.number == policy.last_stage:
            out.append(final_deadline(policy, stage_start, escalating.due if escalating else None,
                                      urgent))
        else:
            assert escalating is not None  # validated on load
            stage_start = escalating.due
    return out
