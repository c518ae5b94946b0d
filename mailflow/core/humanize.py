"""Instants and dates as a person in the UK reads them: "Wednesday 30 December 2026, 5pm"."""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

UK = ZoneInfo("Europe/London")


def _clock_time(local: datetime) -> str:
    hour = local.hour % 12 or 12
    suffix = "am" if local.hour < 12 else "pm"
    return f"{hour}{suffix}" if local.minute == 0 else f"{hour}:{local.minute:02d}{suffix}"


# Formatted once per instant (a pure function of it): a sweep's notices name the same few
# deadline instants hundreds of times (a Board's reminders share 09:00, its deadlines 5pm).
@functools.lru_cache(maxsize=4096)
def long_instant(at: datetime) -> str:
    """Wednesday 30 December 2026, 5pm"""
    local = at.astimezone(UK)
    return f"{local:%A} {local.day} {local:%B %Y}, {_clock_time(local)}"


@functools.lru_cache(maxsize=4096)
def short_day(at: datetime) -> str:
    """Wed 30 Dec"""
    local = at.astimezone(UK)
    return f"{local:%a} {local.day} {local:%b}"


def local_iso(at: datetime) -> str:
    """ISO 8601 with the UK offset in force then: 2026-12-30T17:00:00+00:00"""
    return at.astimezone(UK).isoformat()


def local_stamp(at: datetime) -> str:
    """A fixed-width UK local time with its zone, for the command line's tables:
    "Wed 30 Dec 2026 17:00 GMT" (BST in summer)."""
    local = at.astimezone(UK)
    return f"{local:%a %d %b %Y %H:%M} {local.tzname()}"


def long_date(iso_date: str) -> str:
    """A form's ISO 8601 date as a person reads it: "1951-04-03" -> "3 April 1951"."""
    day = date.fromisoformat(iso_date)
    return f"{day.day} {day:%B %Y}"


def duration(delta: timedelta) -> str:
    """"3 days", "5 hours", "40 minutes": how long, for a person."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} hours"
    return f"{hours // 24} days"
