"""The one place mailflow learns the time. Core code takes a `Clock` (or an instant) as a parameter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, time-zone aware (UTC)."""
        ...


class SystemClock:
    """The wall clock; used only by the daemon and CLI entry points."""

    def now(self) -> datetime:
        return datetime.now(UTC)  # clock-ok: the single wall-clock read


class FixedClock:
    """A clock that stands still until moved: tests, `--at`, and the demo's simulated time."""

    def __init__(self, at: datetime) -> None:
        self._at = _aware(at)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = _aware(at)

    def advance(self, delta: timedelta) -> None:
        self._at += delta


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 instant; a naive one is read as UK local time (what a business team means)."""
    from zoneinfo import ZoneInfo

    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo("Europe/London"))
    return value.astimezone(UTC)


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("Clock instants must be time-zone aware")
    return at.astimezone(UTC)
