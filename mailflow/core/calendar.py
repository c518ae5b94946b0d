"""UK working-day arithmetic: pure functions of a calendar and an instant (never the wall clock).

Rules (also in policies/README.md):
- a working day is a weekday that is neither a bank holiday of the calendar's nation nor a closure;
- an event at or before close of business on a working day is received that day, otherwise on the
  next working day;
- "within N working days" ends at close of business on the Nth working day after the day received
  (N = 0: close of business on the day received).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

NATIONS = {"ENG": "England", "WLS": "Wales", "SCT": "Scotland", "NIR": "Northern Ireland"}
_WEEKEND = {5: "Saturday", 6: "Sunday"}
_ONE_DAY = timedelta(days=1)
# A walk this long without a working day means the calendar is broken (e.g. every day closed).
_MAX_WALK = 366


@dataclass(frozen=True)
class Due:
    at: datetime  # UTC-aware close of business on the last working day
    received: date  # the working day the clock started from
    skipped: tuple[tuple[date, str], ...]  # weekday holidays and closures passed over, in order


@lru_cache(maxsize=256)
def _bank_holidays(nation: str, year: int) -> dict[date, str]:
    # Always with a subdivision: without one, `holidays` omits Easter Monday and August.
    return dict(holidays.country_holidays("GB", subdiv=nation, years=year).items())


@dataclass(frozen=True)
class WorkingCalendar:
    nation: str  # "ENG" | "WLS" | "SCT" | "NIR"
    closures: frozenset[date] = frozenset()
    close_of_business: time = time(17, 0)
    opens: time = time(9, 0)  # start of the working day (reminders are sent then)
    tz: str = "Europe/London"

    def __post_init__(self) -> None:
        if self.nation not in NATIONS:
            raise ValueError(f"nation {self.nation!r} is not one of {', '.join(NATIONS)}")
        if not self.opens < self.close_of_business:
            raise ValueError("opens must be before close_of_business")
        ZoneInfo(self.tz)  # raises for an unknown zone
        object.__setattr__(self, "closures", frozenset(self.closures))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def bank_holiday(self, d: date) -> str | None:
        return _bank_holidays(self.nation, d.year).get(d)

    def non_working_reason(self, d: date) -> str | None:
        """Why `d` is not a working day ("Saturday", "Christmas Day", "closure"), or None."""
        if d.weekday() in _WEEKEND:
            return _WEEKEND[d.weekday()]
        holiday = self.bank_holiday(d)
        if holiday:
            return holiday
        if d in self.closures:
            return "closure"
        return None

    def is_working_day(self, d: date) -> bool:
        return self.non_working_reason(d) is None

    def local(self, instant: datetime) -> datetime:
        if instant.tzinfo is None:
            raise ValueError("instants must be time-zone aware")
        return instant.astimezone(self.zone)

    def at_local(self, d: date, t: time) -> datetime:
        """`t` on day `d` in the calendar's zone, as a UTC-aware instant."""
        return datetime.combine(d, t, tzinfo=self.zone).astimezone(UTC)

    def received_day(self, instant: datetime) -> date:
        """The working day an event at `instant` counts as received."""
        return self._received(instant, [])

    def add_working_days(self, instant: datetime, n: int) -> Due:
        """Close of business on the nth working day after the day `instant` is received."""
        if n < 0:
            raise ValueError("n must be >= 0")
        skipped: list[tuple[date, str]] = []
        received = self._received(instant, skipped)
        d = received
        for _ in range(n):
            d = self._next_working_day(d, skipped)
        return Due(self.at_local(d, self.close_of_business), received, tuple(skipped))

    def working_days_before(self, due: datetime, n: int) -> datetime:
        """Opening time of the working day n working days before `due`'s day (n = 0: that day,
        or the last working day before it if it is not one)."""
        if n < 0:
            raise ValueError("n must be >= 0")
        d = self.local(due).date()
        counted = 0
        for _ in range(n + _MAX_WALK):
            if counted >= n and self.is_working_day(d):
                return self.at_local(d, self.opens)
            d -= _ONE_DAY
            if self.is_working_day(d):
                counted += 1
        raise ValueError(f"no working day found before {due.isoformat()}")

    def _received(self, instant: datetime, skipped: list[tuple[date, str]]) -> date:
        local = self.local(instant)
        d = local.date()
        if self.is_working_day(d) and local.time() <= self.close_of_business:
            return d
        self._note(d, skipped)
        return self._next_working_day(d, skipped)

    def _next_working_day(self, d: date, skipped: list[tuple[date, str]]) -> date:
        for _ in range(_MAX_WALK):
            d += _ONE_DAY
            if self.is_working_day(d):
                return d
            self._note(d, skipped)
        raise ValueError(f"no working day within {_MAX_WALK} days of {d.isoformat()}")

    def _note(self, d: date, skipped: list[tuple[date, str]]) -> None:
        reason = self.non_working_reason(d)
        if reason is not None and reason not in _WEEKEND.values():
            skipped.append((d, reason))
