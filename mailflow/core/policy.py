"""A partnership's escalation policy: the model, and reading it from TOML (validated on load).

The schema is documented in policies/README.md. Deadline arithmetic lives in
`mailflow.core.deadlines`, which imports this module (never the other way round).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any

from mailflow.core.calendar import NATIONS, WorkingCalendar
from mailflow.errors import ConfigError, PolicyError

STEP_NAMES = ("raise", "respond", "resolve", "confirm")
COUNTS_FROM = ("stage_start", "case_start", "resolution")
NOTIFY_WHEN = ("stage_start", "before_next_stage")
TIERS = ("practitioner", "manager", "senior_manager", "safeguarding_lead", "executive", "board",
         "chair")
FINAL_KINDS = ("alert",)
FINAL_NOTIFY = ("business_team", "chair")  # who the final action alerts
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_MAX_DAYS = 60


@dataclass(frozen=True)
class Step:
    name: str  # "raise" | "respond" | "resolve" | "confirm"
    days: int | None  # None: no timescale
    urgent_days: int | None  # None: the same as days
    counts_from: str  # "stage_start" | "case_start" | "resolution"
    escalates: bool  # when it runs out the stage is over (next stage, or the final action)
    quote: str
    local_default: bool = False  # `days` is mailflow's choice, not the policy's
    urgent_quote: str = ""
    urgent_local_default: bool = False  # `urgent_days` is mailflow's choice

    def effective_days(self, urgent: bool) -> int | None:
        """The timescale that applies: for an urgent case, whichever is less."""
        if urgent and self.urgent_days is not None:
            return self.urgent_days if self.days is None else min(self.days, self.urgent_days)
        return self.days


@dataclass(frozen=True)
class Notify:
    role: str  # directory role key, e.g. "business_team", "director_of_social_work"
    label: str  # as the policy words it
    when: str  # "stage_start" | "before_next_stage"
    only_for: str | None  # agency kind it applies to, e.g. "local_authority_adult_services"
    quote: str


@dataclass(frozen=True)
class Stage:
    number: int
    title: str
    tier: str  # directory tier key of who acts
    acting_role: str  # as the policy words it
    steps: tuple[Step, ...]
    notify: tuple[Notify, ...]
    copy_business_team: bool
    quote: str

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)

    @property
    def escalating_step(self) -> Step | None:
        return next((s for s in self.steps if s.escalates), None)

    def recipients(self, when: str, agency_kind: str | None = None) -> tuple[str, ...]:
        """Role keys to notify at `when` ("stage_start" | "before_next_stage") for a case whose
        other agency is of `agency_kind` ("*": every kind); the business team first when copied."""
        roles = ["business_team"] if when == "stage_start" and self.copy_business_team else []
        for n in self.notify:
            applies = agency_kind == "*" or n.only_for in (None, agency_kind)
            if n.when == when and applies:
                roles.append(n.role)
        return tuple(dict.fromkeys(roles))


@dataclass(frozen=True)
class FinalAction:
    kind: str  # "alert": tell the business team and the chair
    days: int | None  # None: when the last stage's escalating step runs out; else N working days
    local_default: bool  # after the last stage starts (for a last stage with no timescale)
    quote: str


@dataclass(frozen=True)
class Policy:
    name: str  # file stem, e.g. "swindon"
    title: str
    partnership: str
    mailbox: str
    calendar: WorkingCalendar
    stages: tuple[Stage, ...]
    final: FinalAction
    reminder_days_before: int = 1
    max_extension_days: int = 5  # the most `#extend` may add to a stage, in working days
    tell_other_professional: bool = True  # the other professional on the form hears when a case opens
    source: Path = field(default_factory=Path)
    document: str = ""  # the source document it encodes

    def stage(self, number: int) -> Stage:
        if not 1 <= number <= len(self.stages):
            raise KeyError(f"policy {self.name!r} has no stage {number} (1..{len(self.stages)})")
        return self.stages[number - 1]

    @property
    def last_stage(self) -> int:
        return len(self.stages)


# --- loading ----------------------------------------------------------------------------------


class _Table:
    """A TOML table read strictly: every key is consumed or reported as unknown."""

    def __init__(self, path: Path, where: str, data: Any) -> None:
        self.path, self.where = path, where
        if not isinstance(data, dict):
            self.fail("", "must be a table")
        self.data: dict[str, Any] = dict(data)
        self.seen: set[str] = set()

    def key(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where and key else (self.where or key)

    def fail(self, key: str, problem: str) -> None:
        raise PolicyError(f"{self.path}: {self.key(key) or '(top level)'}: {problem}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...,
            *, check: Callable[[Any], str | None] | None = None) -> Any:
        self.seen.add(key)
        if key not in self.data:
            if default is ...:
                self.fail(key, "is required")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(k.__name__ for k in kinds)
            self.fail(key, f"must be {names}, not {type(value).__name__} {value!r}")
        if check is not None:
            problem = check(value)
            if problem:
                self.fail(key, problem)
        return value

    def text(self, key: str, default: Any = ...) -> Any:
        return self.get(key, str, default,
                        check=lambda v: None if v.strip() else "must not be empty")

    def choice(self, key: str, choices: Sequence[str], default: Any = ...) -> Any:
        def check(v: str) -> str | None:
            return None if v in choices else f"{v!r} is not one of {', '.join(choices)}"

        return self.get(key, str, default, check=check)

    def days(self, key: str) -> int | None:
        days: int | None = self.get(key, int, None, check=lambda v: None if 0 <= v <= _MAX_DAYS
                                    else f"{v} must be between 0 and {_MAX_DAYS} working days")
        return days

    def table(self, key: str) -> _Table:
        return _Table(self.path, self.key(key), self.get(key, dict))

    def tables(self, key: str, required: bool = True) -> list[_Table]:
        items = self.get(key, list, ... if required else [])
        return [_Table(self.path, f"{self.key(key)}[{i}]", item) for i, item in enumerate(items, 1)]

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            self.fail(unknown[0], "unknown key (typo?)")


def _clock_time(t: _Table, key: str, default: time) -> time:
    value = t.get(key, (str, time), None)
    if value is None:
        return default
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(value)
    except ValueError:
        t.fail(key, f"{value!r} is not a time like \"17:00\"")
        raise  # unreachable


def _calendar(t: _Table) -> WorkingCalendar:
    nation = t.choice("nation", tuple(NATIONS))
    closures: set[date] = set()
    for i, value in enumerate(t.get("closures", list, []), 1):
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value)
            except ValueError:
                t.fail(f"closures[{i}]", f"{value!r} is not a date like 2026-12-24")
        if not isinstance(value, date) or hasattr(value, "hour"):
            t.fail(f"closures[{i}]", f"{value!r} is not a date like 2026-12-24")
        closures.add(value)
    cob = _clock_time(t, "close_of_business", time(17, 0))
    opens = _clock_time(t, "opens", time(9, 0))
    tz = t.text("time_zone", "Europe/London")
    t.done()
    try:
        return WorkingCalendar(nation, frozenset(closures), cob, opens, tz)
    except (ValueError, KeyError) as exc:
        t.fail("", str(exc) or "invalid time_zone")
        raise  # unreachable


def _step(t: _Table) -> Step:
    name = t.choice("name", STEP_NAMES)
    default_from = "resolution" if name == "confirm" else "stage_start"
    step = Step(
        name=name,
        days=t.days("days"),
        urgent_days=t.days("urgent_days"),
        counts_from=t.choice("counts_from", COUNTS_FROM, default_from),
        escalates=t.get("escalates", bool, False),
        quote=t.text("quote"),
        local_default=t.get("local_default", bool, False),
        urgent_quote=t.get("urgent_quote", str, ""),
        urgent_local_default=t.get("urgent_local_default", bool, False),
    )
    if step.name == "confirm" and step.counts_from != "resolution":
        t.fail("counts_from", "a confirm step counts from the resolution")
    if step.name != "confirm" and step.counts_from == "resolution":
        t.fail("counts_from", "only a confirm step counts from the resolution")
    if step.escalates and step.name == "confirm":
        t.fail("escalates", "a confirm step cannot escalate")
    if step.escalates and step.days is None:
        t.fail("days", "an escalating step needs a timescale")
    if step.urgent_days is not None and step.days is None:
        t.fail("urgent_days", "needs days too")
    t.done()
    return step


def _notify(t: _Table) -> Notify:
    n = Notify(
        role=t.get("role", str,
                   check=lambda v: None if _KEY.match(v) else "must be a snake_case role key"),
        label=t.text("label"),
        when=t.choice("when", NOTIFY_WHEN, "stage_start"),
        only_for=t.get("only_for", str, None),
        quote=t.text("quote"),
    )
    t.done()
    return n


def _stage(t: _Table, expected: int) -> Stage:
    number = t.get("number", int, check=lambda v: None if v == expected
                   else f"must be {expected} (stages are numbered 1, 2, ... in order)")
    steps = tuple(_step(s) for s in t.tables("steps", required=False))
    names = [s.name for s in steps]
    for name in set(names):
        if names.count(name) > 1:
            t.fail("steps", f"step {name!r} appears twice")
    if sum(s.escalates for s in steps) > 1:
        t.fail("steps", "at most one step may escalate")
    stage = Stage(
        number=number,
        title=t.text("title"),
        tier=t.choice("tier", TIERS),
        acting_role=t.text("acting_role"),
        steps=steps,
        notify=tuple(_notify(n) for n in t.tables("notify", required=False)),
        copy_business_team=t.get("copy_business_team", bool, False),
        quote=t.text("quote"),
    )
    t.done()
    return stage


def _final(t: _Table) -> FinalAction:
    final = FinalAction(
        kind=t.choice("kind", FINAL_KINDS, "alert"),
        days=t.days("days"),
        local_default=t.get("local_default", bool, False),
        quote=t.text("quote"),
    )
    t.done()
    return final


def _check_case_start_order(top: _Table, stages: tuple[Stage, ...]) -> None:
    """Timescales counted from the case start must grow stage by stage (Shropshire: 2, 4, 5, 7,
    9), or a stage reached on time would already be out of time."""
    for before, after in zip(stages, stages[1:], strict=False):
        a, b = before.escalating_step, after.escalating_step
        if a is None or b is None or not a.counts_from == b.counts_from == "case_start":
            continue
        for urgent in (False, True):
            da, db = a.effective_days(urgent), b.effective_days(urgent)
            if da is not None and db is not None and db <= da:
                key = "urgent_days" if urgent and b.urgent_days is not None else "days"
                top.fail(f"stages[{after.number}].steps.{key}",
                         f"counted from the case start it must be more than stage "
                         f"{before.number}'s {da}")


def load_policy(path: Path) -> Policy:
    """Read and validate one policy file; PolicyError("file: key: problem") if it is wrong."""
    path = Path(path)
    if not _NAME.match(path.stem):
        raise PolicyError(f"{path}: (file name): {path.stem!r} must be lower-case letters, "
                          "digits, - or _")
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except OSError as exc:
        raise PolicyError(f"{path}: (file): cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: (syntax): {exc}") from None
    top = _Table(path, "", raw)
    p = top.table("partnership")
    name, title = p.text("name"), p.text("title")
    mailbox = p.get("mailbox", str, check=lambda v: None if _EMAIL.fullmatch(v)
                    else f"{v!r} is not an email address")
    document = p.get("document", str, "")
    reminder = p.days("reminder_days_before")
    max_extension = p.days("max_extension_days")
    tell_other = p.get("tell_other_professional", bool, True)
    p.done()
    calendar = _calendar(top.table("calendar"))
    stage_tables = top.tables("stages")
    if not stage_tables:
        top.fail("stages", "needs at least one stage")
    stages = tuple(_stage(s, i) for i, s in enumerate(stage_tables, 1))
    final_table = top.table("final")
    final = _final(final_table)
    top.done()
    for stage in stages[:-1]:
        if stage.escalating_step is None:
            top.fail(f"stages[{stage.number}].steps",
                     "every stage but the last needs a step with escalates = true")
    _check_case_start_order(top, stages)
    last = stages[-1]
    if last.escalating_step is None and final.days is None:
        final_table.fail("days", f"stage {last.number} has no escalating step, "
                                 "so the final action needs days")
    if last.escalating_step is not None and final.days is not None:
        final_table.fail("days", f"stage {last.number} has an escalating step: the final action "
                                 "happens when it runs out; remove days")
    return Policy(
        name=path.stem, title=title, partnership=name, mailbox=mailbox, calendar=calendar,
        stages=stages, final=final, reminder_days_before=1 if reminder is None else reminder,
        max_extension_days=5 if max_extension is None else max_extension, source=path, document=document,
        tell_other_professional=tell_other,
    )


def load_policies(dirs: Sequence[Path]) -> dict[str, Policy]:
    """Every *.toml in each directory, by file stem; a later directory's file of the same name
    overrides an earlier one's."""
    found: dict[str, Path] = {}
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            raise ConfigError(f"{d}: policies directory not found")
        for path in sorted(d.glob("*.toml")):
            found[path.stem] = path
    return {name: load_policy(path) for name, path in sorted(found.items())}
