"""Health decisions for the daemon: pure functions of times and thresholds, no I/O.

The lead's daemon calls `check_health(...)` each pass, logs every problem at error level,
exposes them as the health status and emails the business team when the list changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mailflow.core.humanize import duration


@dataclass(frozen=True)
class Thresholds:
    mailbox_stale: timedelta = timedelta(minutes=30)   # no successful mailbox read for this long
    outbox_stale: timedelta = timedelta(minutes=30)    # an unsent message older than this


@dataclass(frozen=True)
class Problem:
    code: str       # "mailbox-never-read", "mailbox-stale", "outbox-stuck"
    message: str    # one sentence for the business team and the log (no personal data)
    since: datetime | None = None


def check_health(*, last_mailbox_read: datetime | None, oldest_unsent: datetime | None,
                 now: datetime, thresholds: Thresholds = Thresholds(),
                 started: datetime | None = None, mailbox: str = "the mailbox") -> list[Problem]:
    """Problems now; an empty list means healthy.

    `last_mailbox_read`: end of the last successful fetch (None: never since `started`).
    `oldest_unsent`: when the oldest message still waiting in the outbox was queued (None: empty).
    """
    problems: list[Problem] = []
    if last_mailbox_read is None:
        if started is not None and now - started >= thresholds.mailbox_stale:
            problems.append(Problem(
                "mailbox-never-read",
                f"{mailbox} has not been read successfully since mailflow started "
                f"{_ago(now - started)}: incoming referrals are not being recorded. "
                f"Run 'mailflow doctor' to see why.", started))
    elif now - last_mailbox_read >= thresholds.mailbox_stale:
        problems.append(Problem(
            "mailbox-stale",
            f"{mailbox} was last read successfully {_ago(now - last_mailbox_read)}: incoming "
            f"referrals are not being recorded. Run 'mailflow doctor' to see why.",
            last_mailbox_read))
    if oldest_unsent is not None and now - oldest_unsent >= thresholds.outbox_stale:
        problems.append(Problem(
            "outbox-stuck",
            f"the oldest unsent message has waited {_ago(now - oldest_unsent)}: "
            f"acknowledgements and chasers are not going out. Run 'mailflow outbox list' "
            f"and 'mailflow doctor'.", oldest_unsent))
    return problems


def _ago(delta: timedelta) -> str:
    return f"{duration(delta)} ago"
