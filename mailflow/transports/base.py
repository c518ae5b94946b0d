"""The small interface every mail transport implements."""

from __future__ import annotations

import abc
from dataclasses import dataclass


class SendError(Exception):
    """Base for failures to hand a message to the transport."""


class TransientSendError(SendError):
    """Try again later (SMTP 4xx, connection lost, throttled)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """Will never succeed as it is (SMTP 5xx): the outbox row is marked failed."""


@dataclass(frozen=True)
class OutgoingMail:
    message_id: str         # the Message-ID header value, with angle brackets
    envelope_from: str
    recipients: tuple[str, ...]
    raw: bytes              # the complete RFC 5322 message


class MailTransport(abc.ABC):
    name: str = "transport"

    @abc.abstractmethod
    def send(self, mail: OutgoingMail) -> None:
        """Hand the message over; raise TransientSendError or PermanentSendError on failure."""

    def already_sent(self, message_id: str) -> bool | None:
        """The transport's own record (a Sent folder, a file): True/False, or None when it keeps none."""
        return None

    def close(self) -> None:
        """Release connections."""
