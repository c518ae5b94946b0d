"""The small interface every mailbox source implements.

The pipeline calls `fetch()`, commits what it learned to the database, and only then calls
`settle()` to move the message out of the watched folder. A crash between the two leaves the
message in place; the pipeline recognises it on the next pass (source id, Message-ID, SHA-256)
and settles it without processing it again.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class Outcome(StrEnum):
    PROCESSED = "processed"      # moved to the processed folder
    QUARANTINED = "quarantined"  # moved to the quarantine folder
    LEFT = "left"                # unrelated mail: left where it is (the source remembers it)


class SettlesIntoFolders(Protocol):
    @property
    def processed_folder(self) -> str: ...
    @property
    def quarantine_folder(self) -> str: ...
    @property
    def unrelated_folder(self) -> str | None: ...


def target_folder(settings: SettlesIntoFolders, outcome: Outcome) -> str | None:
    """The folder settle() moves a message to; None leaves it in the watched folder."""
    return {Outcome.PROCESSED: settings.processed_folder,
            Outcome.QUARANTINED: settings.quarantine_folder,
            Outcome.LEFT: settings.unrelated_folder}[Outcome(outcome)]


@dataclass(frozen=True, kw_only=True)
class ExchangeMailboxSettings:
    """What the Exchange sources (EWS, Graph) share: one mailbox, its folders, the size limit."""

    mailbox: str
    folder: str = "Inbox"
    processed_folder: str = "Processed"
    quarantine_folder: str = "Quarantine"
    unrelated_folder: str | None = None       # None: unrelated mail stays in the watched folder
    max_message_bytes: int = 25 * 1024 * 1024


def folder_options(options: Mapping[str, Any], watched: str) -> dict[str, Any]:
    """The keys every server mailbox shares: its folders and the size limit (ValueError when a
    number is not one)."""
    return {
        "folder": str(options.get("folder", watched)),
        "processed_folder": str(options.get("processed_folder", "Processed")),
        "quarantine_folder": str(options.get("quarantine_folder", "Quarantine")),
        "unrelated_folder": str(options["unrelated_folder"]) if options.get("unrelated_folder") else None,
        "max_message_bytes": int(options.get("max_message_bytes", 25 * 1024 * 1024)),
    }


@dataclass(frozen=True)
class InboundMail:
    raw: bytes
    source_id: str                 # stable within the source, e.g. "maildir:<key>", "imap:INBOX:<uidvalidity>:<uid>"
    folder: str = "INBOX"
    uidvalidity: int | None = None
    uid: int | None = None
    # When the mailbox received it, where the source knows (IMAP INTERNALDATE, Maildir delivery,
    # the mbox "From " line, Graph receivedDateTime); aware. None: unknown (recorded as "now").
    arrived_at: datetime | None = None


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
