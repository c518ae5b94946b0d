"""Microsoft Graph transport: raw MIME through `sendMail` (saved to Sent Items by Exchange).

The body is the base64 of the complete message with `Content-Type: text/plain`; Graph answers
202. 429/503 -> TransientSendError with the server's Retry-After (after the client's own
retries); 400 -> PermanentSendError; 401/403 -> TransientSendError with what to fix (a missing
permission must not fail the queue for good: the watchdog reports the growing outbox).
`already_sent()` looks the Message-ID up in Sent Items. See mailflow/sources/graph.py for
configuration and moving from EWS.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from mailflow.connection.graph import (
    GraphClient,
    GraphError,
    Throttled,
    explain_graph_error,
    graph_client_from_config,
)
from mailflow.connector_options import GraphTransportOptions, read_options
from mailflow.connectors import ConnectorEnv
from mailflow.errors import ConfigError
from mailflow.transports.base import (
    MailTransport,
    OutgoingMail,
    PermanentSendError,
    TransientSendError,
)

log = logging.getLogger(__name__)



class GraphTransport(MailTransport):
    name = "graph"

    def __init__(self, mailbox: str, client: GraphClient) -> None:
        self.mailbox = mailbox
        self._client = client
        self._user = f"/users/{quote(mailbox)}"

    @classmethod
    def from_config(cls, options: Mapping[str, Any], env: ConnectorEnv) -> GraphTransport:
        options = read_options(GraphTransportOptions, options, env.where)   # every key and type (connector_options.py)
        if not options.get("mailbox"):
            raise ConfigError(f"{env.where}: mailbox: required (the address that sends)")
        return cls(str(options["mailbox"]), graph_client_from_config(options, env))

    def send(self, mail: OutgoingMail) -> None:
        body = base64.b64encode(mail.raw)
        try:
            self._client.request("POST", f"{self._user}/sendMail", content=body,
                                 headers={"Content-Type": "text/plain"})
        except Throttled as exc:
            raise TransientSendError(f"{mail.message_id}: Graph {exc}",
                                     retry_after=exc.retry_after) from None
        except GraphError as exc:
            text = f"{mail.message_id}: {explain_graph_error(exc, self.mailbox)}"
            if exc.status in (401, 403) or exc.status >= 500:
                raise TransientSendError(text) from None
            raise PermanentSendError(text) from None
        except httpx.HTTPError as exc:
            raise TransientSendError(f"{mail.message_id}: cannot reach Graph "
                                     f"({type(exc).__name__}: {exc})") from None

    def already_sent(self, message_id: str) -> bool | None:
        escaped = message_id.replace("'", "''")
        try:
            found = self._client.request(
                "GET", f"{self._user}/mailFolders/sentitems/messages",
                params={"$filter": f"internetMessageId eq '{escaped}'", "$select": "id"},
            ).json().get("value", [])
        except (GraphError, Throttled, httpx.HTTPError) as exc:
            log.warning("cannot check Sent Items for %s: %s", message_id, exc)
            return None
        return bool(found)

    def close(self) -> None:
        self._client.close()
