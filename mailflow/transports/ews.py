"""EWS transport (exchangelib): sends the raw MIME with CreateItem/SendAndSaveCopy, so a copy
lands in Sent Items; `already_sent()` looks the Message-ID up there. The recipients are the
message's own To and Cc (the outbox's recipients are exactly those).

Same config keys as the EWS source (mailbox, auth, server/autodiscover, credentials).
Throttling, connection and access errors are transient (the outbox retries; the watchdog
reports a growing outbox); a refused message or recipient is permanent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from mailflow.connection.exchange import account_from_config, explain_ews_error
from mailflow.connector_options import EwsTransportOptions, read_options
from mailflow.connectors import ConnectorEnv
from mailflow.transports.base import (
    MailTransport,
    OutgoingMail,
    PermanentSendError,
    TransientSendError,
)

log = logging.getLogger(__name__)

_PERMANENT = {"ErrorInvalidRecipients", "ErrorMissingRecipients", "ErrorMimeContentConversionFailed",
              "ErrorMessageSizeExceeded", "ErrorInvalidSmtpAddress", "ErrorSendAsDenied"}


class EwsTransport(MailTransport):
    name = "ews"

    def __init__(self, mailbox: str, account_factory: Callable[[], Any]) -> None:
        self.mailbox = mailbox
        self._factory = account_factory
        self._account: Any = None

    @classmethod
    def from_config(cls, options: Mapping[str, Any], env: ConnectorEnv) -> EwsTransport:
        options = read_options(EwsTransportOptions, options, env.where)   # every key and type (connector_options.py)
        return cls(str(options.get("mailbox", "")), account_from_config(options, env))

    def send(self, mail: OutgoingMail) -> None:
        from exchangelib import Message

        try:
            if self._account is None:
                self._account = self._factory()
            acc = self._account
            # MIME only, as Graph's sendMail: Exchange takes To and Cc from the headers. Setting
            # ToRecipients as well would turn every Cc into a To.
            Message(account=acc, folder=acc.sent, mime_content=mail.raw).send_and_save()
        except Exception as exc:  # noqa: BLE001 - exchangelib raises many unrelated types
            name = type(exc).__name__
            text = f"{mail.message_id}: {explain_ews_error(exc, self.mailbox)}"
            if name in _PERMANENT:
                raise PermanentSendError(text) from None
            if name == "TransportError":
                self._account = None
            back_off = getattr(exc, "back_off", None)
            raise TransientSendError(text, retry_after=back_off) from None

    def already_sent(self, message_id: str) -> bool | None:
        try:
            if self._account is None:
                self._account = self._factory()
            return bool(self._account.sent.filter(message_id=message_id).exists())
        except Exception as exc:  # noqa: BLE001
            log.warning("cannot check Sent Items for %s: %s", message_id, type(exc).__name__)
            return None

    def close(self) -> None:
        acc, self._account = self._account, None
        if acc is not None:
            try:
                acc.protocol.close()
            except Exception:  # noqa: BLE001
                pass
