"""A stand-in for the pipeline: fetch, dedupe on Message-ID, 'commit', settle."""

from __future__ import annotations

import email
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mailflow.sources.base import InboundMail, MailboxSource, Outcome

if TYPE_CHECKING:
    from pathlib import Path

    from mailflow.app import App


def message_id(raw: bytes) -> str:
    return str(email.message_from_bytes(raw).get("Message-ID", "")).strip()


@dataclass
class MiniPipeline:
    source: MailboxSource
    decide: Callable[[InboundMail], Outcome] = lambda _m: Outcome.PROCESSED
    committed: dict[str, int] = field(default_factory=dict)   # Message-ID -> times committed
    settled: list[tuple[str, Outcome]] = field(default_factory=list)
    crash_before_settle: set[str] = field(default_factory=set)

    def run_once(self) -> int:
        """One pass; returns how many messages were newly committed."""
        new = 0
        for mail in self.source.fetch():
            mid = message_id(mail.raw)
            outcome = self.decide(mail)
            if mid not in self.committed:
                self.committed[mid] = 1
                new += 1
            if mid in self.crash_before_settle:
                self.crash_before_settle.discard(mid)
                raise RuntimeError("crash between commit and settle")
            self.source.settle(mail, outcome)
            self.settled.append((mid, outcome))
        return new


def later(delay: float, fn: Callable[[], object]) -> threading.Timer:
    t = threading.Timer(delay, fn)
    t.daemon = True
    t.start()
    return t


class RotatingTokens:
    """Like MsalTokenProvider: the cached token until it is invalidated, then a fresh one."""

    def __init__(self, *tokens: str) -> None:
        self._tokens = list(tokens)
        self.invalidated = 0

    def token(self) -> str:
        return self._tokens[0]

    def invalidate(self) -> None:
        self.invalidated += 1
        self._tokens.pop(0)


def ingest_from(app: App, source: MailboxSource) -> None:
    """One pass of the real pipeline over `source` (closed afterwards, as after a restart)."""
    from mailflow.pipeline.ingest import ingest_source

    rt = app.runtime()
    rt._source = source  # noqa: SLF001 - the runtime builds its source from config; the test hands it this one
    try:
        ingest_source(rt)
    finally:
        rt.close()


def committed_source_ids(db_file: Path) -> set[str]:
    """What another process would see in the SQLite database right now."""
    import sqlite3

    with sqlite3.connect(db_file) as conn:
        return {row[0] for row in conn.execute("SELECT source_id FROM inbound_messages")}
