"""When a scheduled job runs, written in the config: read once, when the config loads.

Two forms, both UK time (Europe/London):
  - crontab, five fields: "0 8 * * 1-5" (minute hour day month weekday; weekday 0 or 7 is Sunday);
  - the short form "mon-fri 08:00" (APScheduler's weekday names, then HH:MM).

The trigger the daemon schedules is the one built here at load, so `mailflow doctor` and
`mailflow run` accept and reject the same texts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from apscheduler.triggers.cron import CronTrigger
from pydantic import PlainSerializer, PlainValidator
from pydantic_core import PydanticCustomError

TIMEZONE = "Europe/London"
_SHORT = re.compile(r"^(?P<days>[a-z*,\-/0-9]+)\s+(?P<hour>\d{1,2}):(?P<minute>\d{2})$")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")   # crontab numbers, 0 and 7 Sunday


@dataclass(frozen=True)
class CronSchedule:
    text: str             # as written in the config
    trigger: CronTrigger  # what the scheduler runs on

    def __str__(self) -> str:
        return self.text


def cron_schedule(text: str) -> CronSchedule:
    """The schedule `text` means, or ValueError saying why it means none."""
    text = " ".join(text.split())
    short = _SHORT.match(text.lower())
    try:
        if short:
            trigger = CronTrigger(day_of_week=short["days"], hour=int(short["hour"]),
                                  minute=int(short["minute"]), timezone=TIMEZONE)
        elif len(text.split(" ")) == 5:
            minute, hour, day, month, weekday = text.split(" ")
            # APScheduler 3 counts weekdays from Monday = 0; crontab from Sunday = 0. Its
            # from_crontab does not translate ("1-5" would be Tuesday to Saturday; fixed only in
            # 4.x, agronholm/apscheduler#286): names do.
            trigger = CronTrigger.from_crontab(" ".join((minute, hour, day, month, crontab_weekdays(weekday))),
                                               timezone=TIMEZONE)
        else:
            raise ValueError("expected crontab 'MIN HOUR DAY MONTH WEEKDAY' (e.g. '0 8 * * 1-5') "
                             "or 'DAYS HH:MM' (e.g. 'mon-fri 08:00')")
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a schedule: {exc}") from None
    return CronSchedule(text, trigger)


def crontab_weekdays(field: str) -> str:
    """A crontab weekday field with its numbers as names: "1-5" -> "mon,tue,wed,thu,fri"."""
    items = []
    for item in field.lower().split(","):
        spec, _, step_text = item.partition("/")
        if not re.fullmatch(r"\*|\d+(-\d+)?", spec) or (step_text and not step_text.isdigit()):
            items.append(item)   # names ("mon-fri") and nonsense are APScheduler's to judge
            continue
        first, _, last = spec.partition("-")
        low, high = (0, 6) if spec == "*" else (int(first), int(last or (6 if step_text else first)))
        if spec == "*" and not step_text:
            items.append("*")
            continue
        if not 0 <= low <= high <= 7:
            raise ValueError(f"weekday {item!r} is not within 0-7 (0 and 7 are Sunday)")
        items.extend(_WEEKDAYS[n] for n in range(low, high + 1, int(step_text or 1)))
    return ",".join(dict.fromkeys(items))


def cron_trigger(text: str) -> CronTrigger:
    """The trigger of `text` (ValueError if none): for schedules not read from the config."""
    return cron_schedule(text).trigger


def _validate(value: Any) -> CronSchedule:
    if isinstance(value, CronSchedule):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "Input should be a valid string")
    try:
        return cron_schedule(value)
    except ValueError as exc:
        raise PydanticCustomError("value_error", "{error}", {"error": str(exc)}) from None


# A config field holding a schedule: `digest_cron: Cron = cron_schedule("mon-fri 08:00")`.
Cron = Annotated[CronSchedule, PlainValidator(_validate), PlainSerializer(str)]
