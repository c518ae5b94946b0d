"""Microsoft Graph mailbox source (app-only, httpx): delta query, raw MIME, move after commit.

- The watched folder is read with `messages/delta`; the delta link is kept in SyncState.cursor
  and saved only once every message of the round has been settled, so a crash before settle
  hands those messages out again (the pipeline recognises them). Messages settled LEFT are
  remembered for the session, so flag changes (which show up in delta) do not re-surface them.
- Raw MIME comes from `messages/{id}/$value`, streamed: past `max_message_bytes` the download
  stops and the message goes to quarantine.
- 429 and 503 are retried after `Retry-After` (injectable sleep), up to `max_retries`.
- Needs the application permission Mail.ReadWrite (Mail.Send for the transport) with admin
  consent; restrict it to the partnership mailbox with an Exchange Application Access Policy
  (`New-ApplicationAccessPolicy -AccessRight RestrictAccess ...`).

Moving from EWS to Graph (EWS in Exchange Online is blocked by default from October 2026):

    [partnership.mailbox]                   [partnership.transport]
    kind = "graph"                          kind = "graph"
    mailbox = "sab@council.gov.uk"          mailbox = "sab@council.gov.uk"
    folder = "Inbox"                        tenant_id = "..."   client_id = "..."
    processed_folder = "Processed"          client_secret_file = "/etc/mailflow/graph-secret"
    quarantine_folder = "Quarantine"
    tenant_id = "<Directory (tenant) ID>"
    client_id = "<Application (client) ID>"
    client_secret_file = "/etc/mailflow/graph-secret"

  1. In the same app registration, add the Microsoft Graph *application* permissions
     Mail.ReadWrite and Mail.Send and grant admin consent (EWS used full_access_as_app).
  2. Replace `kind = "ews"`, `server`/`autodiscover`/`auth` with `kind = "graph"` and
     `mailbox`; the folder names stay the same. The EWS sync state is not reused: the first
     delta round hands out what is in the folder again, and the pipeline matches it on
     Message-ID and hash, so nothing is processed twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from mailflow.connection.errors import MailboxAuthError, MailboxUnavailable
from mailflow.connection.graph import (
    GraphClient,
    GraphError,
    Throttled,
    explain_graph_error,
    graph_client_from_config,
)
from mailflow.connector_options import GraphSourceOptions, read_options
from mailflow.connectors import ConnectorEnv, SyncStateStore
from mailflow.errors import ConfigError
from mailflow.sources.base import (
    ExchangeMailboxSettings,
    InboundMail,
    MailboxSource,
    Outcome,
    folder_options,
    target_folder,
)
from mailflow.sources.rounds import CursorRound

log = logging.getLogger(__name__)



@dataclass(frozen=True, kw_only=True)
class GraphSettings(ExchangeMailboxSettings):
    page_size: int = 50


_WELL_KNOWN = {"inbox", "archive", "deleteditems", "drafts", "junkemail", "sentitems"}


class GraphSource(MailboxSource):
    name = "graph"

    def __init__(self, settings: GraphSettings, client: GraphClient,
                 state_store: SyncStateStore) -> None:
        self.settings = settings
        self._client = client
        self._user = f"/users/{quote(settings.mailbox)}"
        self._folder_ids: dict[str, str] = {}
        self._left: set[str] = set()
        self.state_key = f"graph:{settings.mailbox}"
        self._round = CursorRound(state_store, self.state_key, settings.folder)

    @classmethod
    def from_config(cls, options: Mapping[str, Any], env: ConnectorEnv) -> GraphSource:
        options = read_options(GraphSourceOptions, options, env.where)   # every key and type (connector_options.py)
        if not options.get("mailbox"):
            raise ConfigError(f"{env.where}: mailbox: required (the address Graph reads)")
        try:
            settings = GraphSettings(mailbox=str(options["mailbox"]), **folder_options(options, "Inbox"),
                                     page_size=int(options.get("page_size", 50)))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{env.where}: a number is not valid ({exc})") from None
        return cls(settings, graph_client_from_config(options, env), env.state_store)

    # ------------------------------------------------------------------ calls

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._client.request(method, path, **kwargs)
        except Throttled as exc:
            raise MailboxUnavailable(f"{self.state_key}: {exc}") from None
        except GraphError as exc:
            msg = f"{self.state_key}: {explain_graph_error(exc, self.settings.mailbox)}"
            if exc.status in (401, 403):
                raise MailboxAuthError(msg) from None
            raise MailboxUnavailable(msg) from None
        except httpx.HTTPError as exc:
            raise MailboxUnavailable(f"{self.state_key}: cannot reach Graph "
                                     f"({type(exc).__name__}: {exc})") from None

    def folder_id(self, name: str, create: bool = False) -> str:
        """A folder's id by well-known name or display name (a child of the root), created if
        asked and absent."""
        if name in self._folder_ids:
            return self._folder_ids[name]
        if name.lower() in _WELL_KNOWN:
            fid = str(self._call("GET", f"{self._user}/mailFolders/{name.lower()}",
                                 params={"$select": "id"}).json()["id"])
        else:
            escaped = name.replace("'", "''")
            found = self._call("GET", f"{self._user}/mailFolders",
                               params={"$filter": f"displayName eq '{escaped}'",
                                       "$select": "id,displayName"}).json().get("value", [])
            if found:
                fid = str(found[0]["id"])
            elif create:
                log.info("%s: creating folder %s", self.state_key, name)
                fid = str(self._call("POST", f"{self._user}/mailFolders",
                                     json={"displayName": name}).json()["id"])
            else:
                raise MailboxUnavailable(f"{self.state_key}: folder {name!r} not found")
        self._folder_ids[name] = fid
        return fid

    # ------------------------------------------------------------------ fetch

    def fetch(self) -> Iterator[InboundMail]:
        state = self._round.saved()
        if state.cursor:
            url = state.cursor
            params: dict[str, str] | None = None
        else:
            url = f"{self._user}/mailFolders/{self.folder_id(self.settings.folder)}/messages/delta"
            params = {"$select": "id,internetMessageId,receivedDateTime"}
        ids: list[str] = []
        arrived: dict[str, datetime | None] = {}
        delta_link: str | None = None
        while True:
            page = self._call("GET", url, params=params,
                              headers={"Prefer": f"odata.maxpagesize={self.settings.page_size}"}
                              ).json()
            for item in page.get("value", []):
                if "@removed" not in item and item["id"] not in self._left:
                    ids.append(str(item["id"]))
                    arrived[str(item["id"])] = _instant(item.get("receivedDateTime"))
            params = None
            if "@odata.nextLink" in page and page["@odata.nextLink"] != url:
                url = page["@odata.nextLink"]
                continue
            delta_link = page.get("@odata.deltaLink")
            break
        self._round.begin(delta_link, set(ids))
        for mid in ids:
            resp = self._call("GET", f"{self._user}/messages/{quote(mid)}/$value",
                              stream_limit=self.settings.max_message_bytes)
            if resp.extensions.get("truncated"):
                log.warning("%s: message %s is over max_message_bytes %d: quarantined without "
                            "downloading", self.state_key, mid, self.settings.max_message_bytes)
                self._move(mid, self.settings.quarantine_folder)
                self._settled(mid)
                continue
            yield InboundMail(raw=resp.content, source_id=f"graph:{mid}",
                              folder=self.settings.folder, arrived_at=arrived.get(mid))

    # ------------------------------------------------------------------ settle

    def settle(self, mail: InboundMail, outcome: Outcome, reason: str | None = None) -> None:
        mid = mail.source_id.removeprefix("graph:")
        target = target_folder(self.settings, outcome)
        if target is not None:
            self._move(mid, target)
        elif Outcome(outcome) is Outcome.LEFT:
            self._left.add(mid)
        self._settled(mid)

    def _move(self, mid: str, folder: str) -> None:
        dest = self.folder_id(folder, create=True)
        try:
            self._client.request("POST", f"{self._user}/messages/{quote(mid)}/move",
                                 json={"destinationId": dest})
        except GraphError as exc:
            if exc.status == 404:   # already moved (a retry after a lost answer)
                log.info("%s: message %s already gone from the folder", self.state_key, mid)
                return
            raise MailboxUnavailable(f"{self.state_key}: move failed: "
                                     f"{explain_graph_error(exc, self.settings.mailbox)}") from None
        except Throttled as exc:
            raise MailboxUnavailable(f"{self.state_key}: {exc}") from None

    def _settled(self, mid: str) -> None:
        self._round.settled(mid)

    def close(self) -> None:
        self._client.close()


def _instant(value: object) -> datetime | None:
    """A Graph date-time ("2026-12-03T14:15:04Z") as an aware UTC time; None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
