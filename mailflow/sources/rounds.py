"""A delta cursor (a Graph delta link, an EWS sync state) saved only when its round is done.

A source reads the changes since its saved cursor and hands the messages out; the new cursor is
saved only once every one of them is settled. A crash mid-round replays the round, and the
pipeline recognises what it already recorded (Message-ID, content hash) and only settles it.
"""

from __future__ import annotations

from mailflow.connectors import SyncState, SyncStateStore


class CursorRound:
    def __init__(self, store: SyncStateStore, key: str, folder: str) -> None:
        self._store, self._key, self._folder = store, key, folder
        self._pending: set[str] = set()
        self._cursor: str | None = None

    def saved(self) -> SyncState:
        return self._store.load(self._key, self._folder) or SyncState()

    def begin(self, cursor: str | None, item_ids: set[str]) -> None:
        """A new round: `cursor` is saved once all of `item_ids` are settled (now, if none)."""
        self._cursor, self._pending = cursor, set(item_ids)
        self._save_if_done()

    def settled(self, item_id: str) -> None:
        self._pending.discard(item_id)
        self._save_if_done()

    def _save_if_done(self) -> None:
        if not self._pending and self._cursor:
            state = self.saved()
            self._store.save(self._key, self._folder, SyncState(state.uidvalidity, state.last_uid, self._cursor))
            self._cursor = None
