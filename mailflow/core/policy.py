"""A partnership's escalation policy: the model, and reading it from TOML (validated on load).

The schema is documented in policies/README.md. Deadline arithmetic lives in
`mailflow.core.deadlines`, which imports this module (never the other way round). The stages,
steps and notices are pydantic models (mailflow/validation.py): the file's tables as they are
read, checked key by key; nothing here does I/O but `load_policy`, which reads the file.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, PlainValidator, model_validator
from pydantic_core import PydanticCustomError

from mailflow.core.calendar import NATIONS, WorkingCalendar
from mailflow.errors import ConfigError, PolicyError
from mailflow.validation import Array, Table, validate

StepName = Literal["raise", "respond", "resolve", "confirm"]
CountsFrom = Literal["stage_start", "case_start", "resolution"]
NotifyWhen = Literal["stage_start", "before_next_stage"]
Tier = Literal["practitioner", "manager", "senior_manager", "safeguarding_lead", "executive", "board", "chair"]
FinalKind = Literal["alert"]
STEP_NAMES: tuple[str, ...] = get_args(StepName)
COUNTS_FROM: tuple[str, ...] = get_args(CountsFrom)
NOTIFY_WHEN: tuple[str, ...] = get_args(NotifyWhen)
TIERS: tuple[str, ...] = get_args(Tier)
FINAL_KINDS: tuple[str, ...] = get_args(FinalKind)
FINAL_NOTIFY = ("business_team", "chair")  # who the final action alerts
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_MAX_DAYS = 60


def _working_days(value: int) -> int:
    if not 0 <= value <= _MAX_DAYS:
        raise ValueError(f"{value} must be between 0 and {_MAX_DAYS} working days")
    return value


def _not_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _role_key(value: str) -> str:
    if not _KEY.match(value):
        raise ValueError("must be a snake_case role key")
    return value


def _email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise ValueError(f"{value!r} is not an email address")
    return value


def _nation(value: str) -> str:
    if value not in NATIONS:
        raise ValueError(f"{value!r} is not one of {', '.join(NATIONS)}")
    return value


def _closure(value: Any) -> date:
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            pass
    if not isinstance(value, date) or isinstance(value, datetime):
        raise PydanticCustomError("value_error", "{error}", {"error": f"{value!r} is not a date like 2026-12-24"})
    return value


def _clock_time(value: Any) -> time:
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(value)
    except (TypeError, ValueError):
        raise PydanticCustomError("value_error", "{error}",
                                  {"error": f'{value!r} is not a time like "17:00"'}) from None


def _some_stages(stages: tuple[Stage, ...]) -> tuple[Stage, ...]:
    if not stages:
        raise ValueError("needs at least one stage")
    return stages


Days = Annotated[int, AfterValidator(_working_days)]
Text = Annotated[str, AfterValidator(_not_empty)]
ClosureDate = Annotated[date, PlainValidator(_closure)]
ClockTime = Annotated[time, PlainValidator(_clock_time)]


class Step(Table):
    """[[stages.steps]]"""

    name: StepName
    days: Days | None = None  # None: no timescale
    urgent_days: Days | None = None  # None: the same as days
    counts_from: CountsFrom  # default: "resolution" for a confirm step, else "stage_start"
    escalates: bool = False  # when it runs out the stage is over (next stage, or the final action)
    quote: Text
    local_default: bool = False  # `days` is mailflow's choice, not the policy's
    urgent_quote: str = ""
    urgent_local_default: bool = False  # `urgent_days` is mailflow's choice

    @model_validator(mode="before")
    @classmethod
    def _counts_from_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and "counts_from" not in data:
            return {**data, "counts_from": "resolution" if data.get("name") == "confirm" else "stage_start"}
        return data

    def effective_days(self, urgent: bool) -> int | None:
        """The timescale that applies: for an urgent case, whichever is less."""
        if urgent and self.urgent_days is not None:
            return self.urgent_days if self.days is None else min(self.days, self.urgent_days)
        return self.days


class Notify(Table):
    """[[stages.notify]]"""

    role: Annotated[str, AfterValidator(_role_key)]  # directory role key, e.g. "director_of_social_work"
    label: Text  # as the policy words it
    when: NotifyWhen = "stage_start"
    only_for: str | None = None  # agency kind it applies to, e.g. "local_authority_adult_services"
    quote: Text


class Stage(Table):
    """[[stages]]"""

    number: int
    title: Text
    tier: Tier  # directory tier key of who acts
    acting_role: Text  # as the policy words it
    steps: Array[Step] = ()
    notify: Array[Notify] = ()
    copy_business_team: bool = False
    quote: Text

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


class FinalAction(Table):
    """[final]"""

    kind: FinalKind = "alert"  # "alert": tell the business team and the chair
    days: Days | None = None  # None: when the last stage's escalating step runs out; else N working days
    local_default: bool = False  # after the last stage starts (for a last stage with no timescale)
    quote: Text


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


# --- the file ---------------------------------------------------------------------------------
# The models below are the file's schema (policies/README.md): pydantic checks every key, type and
# value as it reads; `policy_from` then checks what spans keys and builds the Policy. No I/O: the
# loader reads the file.


class PartnershipSection(Table):
    """[partnership]"""

    name: Text
    title: Text
    mailbox: Annotated[str, AfterValidator(_email)]
    document: str = ""               # the source document it encodes
    reminder_days_before: Days = 1
    max_extension_days: Days = 5     # the most `#extend` may add to a stage, in working days
    tell_other_professional: bool = True


class CalendarSection(Table):
    """[calendar]"""

    nation: Annotated[str, AfterValidator(_nation)]
    closures: Array[ClosureDate] = ()
    close_of_business: ClockTime = time(17, 0)
    opens: ClockTime = time(9, 0)
    time_zone: Text = "Europe/London"


class PolicyFile(Table):
    partnership: PartnershipSection
    calendar: CalendarSection
    stages: Annotated[Array[Stage], AfterValidator(_some_stages)]
    final: FinalAction


def policy_from(data: Any, path: Path) -> Policy:
    """The policy a parsed TOML file describes, or PolicyError("file: key: problem")."""
    doc = validate(PolicyFile, data, str(path), dotted=True, error=PolicyError)

    def fail(key: str, problem: str) -> PolicyError:
        return PolicyError(f"{path}: {key}: {problem}")

    for i, stage in enumerate(doc.stages, 1):
        _check_stage(stage, i, fail)
    cal = doc.calendar
    try:
        calendar = WorkingCalendar(cal.nation, frozenset(cal.closures), cal.close_of_business, cal.opens,
                                   cal.time_zone)
    except (ValueError, KeyError) as exc:
        raise fail("calendar", str(exc) or "invalid time_zone") from None
    for stage in doc.stages[:-1]:
        if stage.escalating_step is None:
            raise fail(f"stages[{stage.number}].steps", "every stage but the last needs a step with escalates = true")
    _check_case_start_order(doc.stages, fail)
    last, final = doc.stages[-1], doc.final
    if last.escalating_step is None and final.days is None:
        raise fail("final.days", f"stage {last.number} has no escalating step, so the final action needs days")
    if last.escalating_step is not None and final.days is not None:
        raise fail("final.days", f"stage {last.number} has an escalating step: the final action happens when "
                                 "it runs out; remove days")
    p = doc.partnership
    return Policy(
        name=path.stem, title=p.title, partnership=p.name, mailbox=p.mailbox, calendar=calendar,
        stages=doc.stages, final=final, reminder_days_before=p.reminder_days_before,
        max_extension_days=p.max_extension_days, source=path, document=p.document,
        tell_other_professional=p.tell_other_professional,
    )


def _check_stage(stage: Stage, expected: int, fail: Callable[[str, str], PolicyError]) -> None:
    where = f"stages[{expected}]"
    if stage.number != expected:
        raise fail(f"{where}.number", f"must be {expected} (stages are numbered 1, 2, ... in order)")
    for j, step in enumerate(stage.steps, 1):
        key = f"{where}.steps[{j}]"
        if step.name == "confirm" and step.counts_from != "resolution":
            raise fail(f"{key}.counts_from", "a confirm step counts from the resolution")
        if step.name != "confirm" and step.counts_from == "resolution":
            raise fail(f"{key}.counts_from", "only a confirm step counts from the resolution")
        if step.escalates and step.name == "confirm":
            raise fail(f"{key}.escalates", "a confirm step cannot escalate")
        if step.escalates and step.days is None:
            raise fail(f"{key}.days", "an escalating step needs a timescale")
        if step.urgent_days is not None and step.days is None:
            raise fail(f"{key}.urgent_days", "needs days too")
    names = [s.name for s in stage.steps]
    for name in dict.fromkeys(names):
        if names.count(name) > 1:
            raise fail(f"{where}.steps", f"step {name!r} appears twice")
    if sum(s.escalates for s in stage.steps) > 1:
        raise fail(f"{where}.steps", "at most one step may escalate")


def _check_case_start_order(stages: tuple[Stage, ...], fail: Callable[[str, str], PolicyError]) -> None:
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
                raise fail(f"stages[{after.number}].steps.{key}",
                           f"counted from the case start it must be more than stage {before.number}'s {da}")


def load_policy(path: Path) -> Policy:
    """Read and validate one policy file; PolicyError("file: key: problem") if it is wrong."""
    path = Path(path)
    if not _NAME.match(path.stem):
        raise PolicyError(f"{path}: (file name): {path.stem!r} must be lower-case letters, "
                          "digits, - or _")
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{path}: (file): cannot read ({exc.strerror})") from None
    return _policy_from_bytes(path, content)


@functools.lru_cache(maxsize=256)
def _policy_from_bytes(path: Path, content: bytes) -> Policy:
    """Parsed once per content (the config load and App.open both read every policy; TOML parsing
    is most of the cost, and a Policy is immutable)."""
    try:
        raw = tomllib.loads(content.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{path}: (file): not UTF-8 ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: (syntax): {exc}") from None
    return policy_from(raw, path)


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
