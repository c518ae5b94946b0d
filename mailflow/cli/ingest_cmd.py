"""`mailflow ingest PATH...`: feed .eml files, a Maildir or an mbox through the pipeline.

Each message is stored byte for byte as the mailbox holds it (an mbox message without its
`From ` separator line, nothing re-generated), so its SHA-256 is the original's. On a terminal a
progress bar shows the count, rate and time left; otherwise one summary line is printed. Messages
that were not simply processed (quarantined, left alone, not recorded) get a line each either way.
A second run over the same mail changes nothing: every message is recognised as already recorded.
"""

from __future__ import annotations

import argparse
import logging
import mailbox
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailflow.cli.context import CliContext
from mailflow.errors import MailflowError
from mailflow.pipeline.ingest import IngestResult, ingest_stream
from mailflow.sources.base import InboundMail, Outcome
from mailflow.sources.maildir import delivered_at
from parsers.received import received_stamp


@dataclass(frozen=True)
class MailAt:
    """The messages at one path, counted before any is read (for the progress bar)."""

    count: int
    read: Callable[[], Iterator[InboundMail]]


def _files(files: list[Path], folder: str = "INBOX", maildir: bool = False) -> MailAt:
    """`maildir`: the files are a Maildir's, delivered when they were last modified; a loose .eml
    file arrived when its receiving server stamped it (its topmost Received line), else now."""
    def read() -> Iterator[InboundMail]:
        for f in files:
            raw = f.read_bytes()
            yield InboundMail(raw=raw, source_id=f"file:{f.resolve()}", folder=folder,
                              arrived_at=delivered_at(f.stat().st_mtime_ns) if maildir else received_stamp(raw))
    return MailAt(len(files), read)


def _is_mbox(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(5) == b"From "


def _mbox(path: Path) -> MailAt:
    box = mailbox.mbox(str(path), create=False)
    keys = box.keys()   # one streaming pass over the file finds where each message starts and ends

    def read() -> Iterator[InboundMail]:
        try:
            for i, key in enumerate(keys):
                # The bytes between the separator lines as they are in the file: never
                # msg.as_bytes(), which re-generates (and re-folds) the headers.
                yield InboundMail(raw=box.get_bytes(key), source_id=f"mbox:{path.resolve()}:{i}",
                                  arrived_at=_from_line_date(box.get_file(key, from_=True).readline()))
        finally:
            box.close()
    return MailAt(len(keys), read)


def _from_line_date(line: bytes) -> datetime | None:
    """When an mbox message was delivered, from its "From sender Thu Dec  3 14:15:04 2026"
    separator line (the delivering host's clock, with no zone: taken as UTC); None when unreadable."""
    try:
        return datetime.strptime(" ".join(line.decode("ascii").split()[2:7]),
                                 "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC)
    except (UnicodeDecodeError, ValueError):
        return None


def mail_at(path: Path) -> MailAt:
    """Every message at a path: an .eml file, a Maildir (new/ and cur/), a folder of .eml files,
    or an mbox file."""
    if path.is_dir() and (path / "new").is_dir():
        parts = [_files(sorted((path / sub).iterdir()), sub, maildir=True) for sub in ("new", "cur")]
        return MailAt(sum(p.count for p in parts), lambda: (m for p in parts for m in p.read()))
    if path.is_dir():
        return _files(sorted(path.glob("*.eml")))
    if path.is_file() and _is_mbox(path):
        return _mbox(path)
    if path.is_file():
        return _files([path])
    raise MailflowError(f"{path}: no such file or directory")


def messages(path: Path) -> Iterator[InboundMail]:
    """Every message at a path, read one at a time."""
    return mail_at(path).read()


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    rt = ctx.app.runtime(args.partnership)
    sources = [mail_at(Path(p)) for p in args.paths]   # a missing path fails before anything is read
    total = sum(s.count for s in sources)
    result = IngestResult()
    already = 0
    with _progress(total) as advance:
        for source in sources:
            # The next message parsed while this one's transaction runs (ingest_stream).
            for mail, done in ingest_stream(rt, source.read()):
                if done is None:
                    result.add("not recorded")
                    advance(f"{mail.source_id}: not recorded (left where it is)")
                    continue
                result.add(done.outcome.value)
                already += done.duplicate
                line = None
                if done.outcome is not Outcome.PROCESSED and not done.duplicate:
                    line = f"{mail.source_id}: {done.outcome.value}" + (f" ({done.reason})" if done.reason else "")
                advance(line)
    counts = ", ".join(f"{n} {k}" for k, n in sorted(result.outcomes.items())) or "nothing"
    print(f"ingested: {counts}" + (f" ({already} already recorded: unchanged)" if already else ""))
    return 0


class _progress:
    """A rich progress bar (count, rate, time left) on a terminal; nothing otherwise. The
    returned function moves it on by one, printing `line` above the bar when given."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bar: Any = None
        self.streams: list[tuple[logging.StreamHandler[Any], Any]] = []

    def __enter__(self) -> Callable[[str | None], None]:
        if not sys.stdout.isatty() or self.total < 2:
            return _print_line
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = bar = Progress(TextColumn("ingest"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("{task.fields[rate]} msg/s"), TimeElapsedColumn(),
                                  TextColumn("left"), TimeRemainingColumn())
        bar.start()   # from here sys.stdout and sys.stderr print above the bar
        # Log lines too: handlers writing to the terminal write through the bar's proxies meanwhile.
        self.streams = [(h, h.setStream(sys.stderr if h.stream is sys.__stderr__ else sys.stdout))
                        for h in logging.getLogger().handlers
                        if isinstance(h, logging.StreamHandler) and h.stream in (sys.__stderr__, sys.__stdout__)]
        task = bar.add_task("ingest", total=self.total, rate="-")

        def advance(line: str | None) -> None:
            if line:
                bar.console.print(line, highlight=False, markup=False)
            bar.advance(task)
            speed = bar.tasks[0].speed
            bar.update(task, rate=f"{speed:.0f}" if speed else "-")
        return advance

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            for handler, stream in self.streams:
                handler.setStream(stream)
            self.bar.stop()


def _print_line(line: str | None) -> None:
    if line:
        print(line)
