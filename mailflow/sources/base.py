"""The small interface every mailbox source implements.

The pipeline calls `fetch()`, commits what it learned to the database, and only then calls
`settle()` to move the message out of the watched folder. A crash between the two leaves the
message in place; the pipeline recognises it on the next pass (source id, Message-ID, SHA-256)
and settles it without processing it again.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    PROCESSED = "processed"      # moved to the processed folder
    QUARANTINED = "quarantined"  # moved to the quarantine folder
    LEFT = "left"                # unrelated mail: left where it is (the source remembers it)


@dataclass(frozen=True)
class InboundMail:
    raw: bytes
    source_id: str                 # stable within the source, e.g. "maildir:<key>", "imap:INBOX:<uidvalidity>:<uid>"
    folder: str = "INBOX"
    uidvalidity: int | None = None
    uid: int | None = None


class MailboxSource(abc.ABC):
    name: str = "source"

    @abc.abstractmethod
    def fetch(self) -> Iterator[InboundMail]:
        """Messages waiting in the watched folder, oldest first. Must not change their state."""

    @abc.abstractmethod
    def settle(self, mail: InboundMail, outcome: Outcome, reason: str | None = None) -> None:
        """Called after the database commit: move the message according to the outcome."""

    def wait_for_mail(self, timeout: float) -> bool:
        """Block up to `timeout` seconds for a sign of new mail (IMAP IDLE). True if woken early."""
        return False

    def close(self) -> None:
        """Release connections."""
