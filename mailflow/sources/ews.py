"""EWS mailbox source (exchangelib) for on-premises Exchange, or Exchange Online while EWS lasts
(blocked by default from 1 October 2026 unless allow-listed; removed 1 April 2027: see
mailflow/sources/graph.py for moving to Graph).

- Credentials: NTLM (`auth = "ntlm"`, username DOMAIN\\user + password) or app-only OAuth2
  (`auth = "oauth2"`, tenant_id/client_id/client_secret, permission full_access_as_app).
- Server: `server = "mail.council.local"` or `autodiscover = true`.
- `SyncFolderItems` with the sync state kept in SyncState.cursor, saved only once every item
  of the round has been settled (a crash before settle hands them out again).
- Sizes are read first; oversize items go to quarantine without their MIME being fetched.
- settle() moves the item (folders created under the top of the mailbox if absent).
- A throttling fault's back-off (ErrorServerBusy, BackOffMilliseconds) is honoured: no request
  goes to Exchange until it has passed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mailflow.connection.errors import MailboxAuthError, MailboxUnavailable
from mailflow.connection.exchange import account_from_config, explain_ews_error, is_ews_auth_failure
from mailflow.connector_options import EwsSourceOptions, read_options
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
class EwsSettings(ExchangeMailboxSettings):
    batch_size: int = 50


class EwsSource(MailboxSource):
    name = "ews"

    def __init__(self, settings: EwsSettings, account_factory: Callable[[], Any],
                 state_store: SyncStateStore, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._factory = account_factory
        self._monotonic = monotonic
        self._not_before = 0.0          # Exchange asked us to back off until then
        self._account: Any = None
        self._folders: dict[str, Any] = {}
        self._left: set[str] = set()
        self.state_key = f"ews:{settings.mailbox}"
        self._round = CursorRound(state_store, self.state_key, settings.folder)

    @classmethod
    def from_config(cls, options: Mapping[str, Any], env: ConnectorEnv) -> EwsSource:
        options = read_options(EwsSourceOptions, options, env.where)   # every key and type (connector_options.py)
        factory = account_from_config(options, env)
        try:
            settings = EwsSettings(mailbox=str(options["mailbox"]), **folder_options(options, "Inbox"),
                                   batch_size=int(options.get("batch_size", 50)))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{env.where}: a number is not valid ({exc})") from None
        return cls(settings, factory, env.state_store)

    # ------------------------------------------------------------------ helpers

    def _guard(self, what: Callable[[], Any]) -> Any:
        """Run an exchangelib call, turning its errors into MailboxUnavailable/AuthError. While
        Exchange's throttling back-off (BackOffMilliseconds) runs, nothing is sent at all."""
        wait = self._not_before - self._monotonic()
        if wait > 0:
            raise MailboxUnavailable(f"{self.state_key}: Exchange asked for a pause; next "
                                     f"attempt in {wait:.0f} s")
        try:
            return what()
        except MailboxUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - exchangelib raises many unrelated types
            msg = f"{self.state_key}: {explain_ews_error(exc, self.settings.mailbox)}"
            if is_ews_auth_failure(exc):
                raise MailboxAuthError(msg) from None
            back_off = getattr(exc, "back_off", None)
            if back_off:
                self._not_before = self._monotonic() + float(back_off)
            self._account = None if type(exc).__name__ == "TransportError" else self._account
            raise MailboxUnavailable(msg) from None

    def account(self) -> Any:
        if self._account is None:
            self._account = self._guard(self._factory)
        return self._account

    def folder(self, name: str, create: bool = False) -> Any:
        if name in self._folders:
            return self._folders[name]
        acc = self.account()

        def find() -> Any:
            if name.lower() == "inbox":
                return acc.inbox
            from exchangelib import Folder
            from exchangelib.folders import SHALLOW, SingleFolderQuerySet
            from exchangelib.services import CreateFolder

            # One FindFolder (and one CreateFolder) under the top of the mailbox: exchangelib's
            # `children` and `Folder.save()` would first walk and cache the whole folder tree.
            parent = acc.msg_folder_root
            children = SingleFolderQuerySet(account=acc, folder=parent).depth(SHALLOW)
            for child in children.filter(name=name):
                if not isinstance(child, Exception) and child.name == name:
                    return child
            if not create:
                raise MailboxUnavailable(f"{self.state_key}: folder {name!r} not found")
            log.info("%s: creating folder %s", self.state_key, name)
            new = Folder(parent=parent, name=name, folder_class="IPF.Note")
            created = CreateFolder(account=acc).get(parent_folder=parent, folders=[new])
            # CreateFolder answers the new id and changekey; exchangelib's Folder takes them only as _id.
            new._id = Folder.ID_ELEMENT_CLS(created.id, created.changekey)  # noqa: SLF001 - no public setter
            return new

        self._folders[name] = self._guard(find)
        return self._folders[name]

    def check(self) -> int:
        """For `mailflow doctor`: connect and count the items in the watched folder."""
        folder = self.folder(self.settings.folder)
        return int(self._guard(lambda: folder.total_count or 0))

    # ------------------------------------------------------------------ fetch

    def fetch(self) -> Iterator[InboundMail]:
        state = self._round.saved()
        folder = self.folder(self.settings.folder)
        folder.item_sync_state = state.cursor

        def sync() -> list[tuple[str, str, int, datetime | None]]:
            found: list[tuple[str, str, int, datetime | None]] = []
            for change, item in folder.sync_items(sync_state=state.cursor,
                                                  only_fields=["id", "changekey", "size", "datetime_received"],
                                                  max_changes_returned=self.settings.batch_size):
                if change == "create" and item.id not in self._left:
                    received = item.datetime_received
                    found.append((item.id, item.changekey, int(item.size or 0),
                                  datetime.fromtimestamp(received.timestamp(), UTC) if received else None))
            return found

        items = self._guard(sync)
        self._round.begin(folder.item_sync_state, {i for i, _, _, _ in items})
        acc = self.account()
        for item_id, changekey, size, arrived in items:
            if size > self.settings.max_message_bytes:
                log.warning("%s: item %s is %d bytes, over max_message_bytes: quarantined "
                            "without downloading", self.state_key, item_id[-12:], size)
                self._move(item_id, changekey, self.settings.quarantine_folder)
                self._settled(item_id)
                continue
            ids = [(item_id, changekey)]

            def fetch_mime(ids: list[tuple[str, str]] = ids) -> list[Any]:
                return list(acc.fetch(ids=ids, only_fields=["mime_content"]))

            fetched = self._guard(fetch_mime)
            if not fetched or isinstance(fetched[0], Exception):
                self._settled(item_id)   # deleted meanwhile
                continue
            yield InboundMail(raw=bytes(fetched[0].mime_content),
                              source_id=f"ews:{item_id}:{changekey}",
                              folder=self.settings.folder, arrived_at=arrived)

    # ------------------------------------------------------------------ settle

    def settle(self, mail: InboundMail, outcome: Outcome, reason: str | None = None) -> None:
        _, item_id, changekey = mail.source_id.split(":", 2)
        target = target_folder(self.settings, outcome)
        if target is not None:
            self._move(item_id, changekey, target)
        elif Outcome(outcome) is Outcome.LEFT:
            self._left.add(item_id)
        self._settled(item_id)

    def _move(self, item_id: str, changekey: str, folder_name: str) -> None:
        to = self.folder(folder_name, create=True)
        acc = self.account()
        results = self._guard(lambda: list(acc.bulk_move(ids=[(item_id, changekey)],
                                                         to_folder=to)))
        for r in results:
            if isinstance(r, Exception) and type(r).__name__ != "ErrorItemNotFound":
                raise MailboxUnavailable(f"{self.state_key}: move failed: "
                                         f"{explain_ews_error(r, self.settings.mailbox)}")

    def _settled(self, item_id: str) -> None:
        self._round.settled(item_id)

    def close(self) -> None:
        acc, self._account = self._account, None
        if acc is not None:
            try:
                acc.protocol.close()
            except Exception:  # noqa: BLE001 - closing anyway
                pass
