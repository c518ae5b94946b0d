"""A local Maildir: the embedded default's mailbox.

Messages waiting in `new/` are handed out; after the commit they are renamed into the
`.Processed` or `.Quarantine` sub-folder (Maildir++), or into `cur/` when left alone.
Rename is atomic, so a message is always in exactly one place.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailflow.connector_options import MaildirOptions, read_options
from mailflow.connectors import ConnectorEnv
from mailflow.private_files import FILE_MODE, make_private_dir
from mailflow.sources.base import InboundMail, MailboxSource, Outcome

_FOLDERS = {Outcome.PROCESSED: ".Processed", Outcome.QUARANTINED: ".Quarantine"}


def ensure_maildir(path: Path) -> None:
    """The Maildir's folders, created owner-only (0700) if missing."""
    for sub in ("tmp", "new", "cur"):
        make_private_dir(path / sub)


class MaildirSource(MailboxSource):
    def __init__(self, path: Path, name: str = "maildir") -> None:
        self.path = path
        self.name = name
        ensure_maildir(path)

    @classmethod
    def from_config(cls, options: Mapping[str, Any], env: ConnectorEnv) -> MaildirSource:
        options = read_options(MaildirOptions, options, env.where)   # every key and type (connector_options.py)
        return cls(env.path(str(options.get("path", "var/mail"))), name=f"maildir:{options.get('path')}")

    def fetch(self) -> Iterator[InboundMail]:
        new = self.path / "new"
        entries = sorted(_delivered(new), key=lambda e: (e[1], e[0].name))
        for entry, mtime_ns in entries:
            if entry.name.startswith("."):
                continue
            try:
                raw = entry.read_bytes()
            except FileNotFoundError:  # settled by another worker meanwhile
                continue
            yield InboundMail(raw=raw, source_id=f"maildir:{entry.name}", folder="new",
                              arrived_at=delivered_at(mtime_ns))

    def settle(self, mail: InboundMail, outcome: Outcome, reason: str | None = None) -> None:
        name = mail.source_id.removeprefix("maildir:")
        source = self.path / "new" / name
        if outcome is Outcome.LEFT:
            target_dir = self.path / "cur"
        else:
            target_dir = self.path / _FOLDERS[outcome] / "cur"
            ensure_maildir(target_dir.parent)
        try:
            os.replace(source, target_dir / f"{name}:2,S")
        except FileNotFoundError:
            pass  # already settled (a re-run after a crash, or another worker)

    def deliver(self, raw: bytes, name: str) -> Path:
        """Drop a message into `new/` the way an MTA does (tmp, then rename)."""
        tmp = self.path / "tmp" / name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), FILE_MODE)
            fh.write(raw)
        target = self.path / "new" / name
        os.replace(tmp, target)
        return target


def _delivered(folder: Path) -> Iterator[tuple[Path, int]]:
    """Each file in the folder with its modification time (a file settled meanwhile is skipped)."""
    for entry in folder.iterdir():
        try:
            yield entry, entry.stat().st_mtime_ns
        except FileNotFoundError:
            continue


def delivered_at(mtime_ns: int) -> datetime:
    """When a Maildir message was delivered: its file's modification time (a delivery agent writes
    it in tmp/ and moves it to new/; nothing rewrites it after)."""
    return datetime.fromtimestamp(mtime_ns / 1e9, UTC)
