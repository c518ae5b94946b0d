"""`mailflow ingest PATH...`: feed .eml files, a Maildir or an mbox through the pipeline."""

from __future__ import annotations

import argparse
import mailbox
from collections.abc import Iterator
from pathlib import Path

from mailflow.cli.context import CliContext
from mailflow.errors import MailflowError
from mailflow.pipeline.ingest import IngestResult, ingest_one
from mailflow.sources.base import InboundMail


def messages(path: Path) -> Iterator[InboundMail]:
    """Every message at a path: an .eml file, a Maildir (new/ and cur/), or an mbox file."""
    if path.is_dir() and (path / "new").is_dir():
        for sub in ("new", "cur"):
            for f in sorted((path / sub).iterdir()):
                yield InboundMail(raw=f.read_bytes(), source_id=f"file:{f.resolve()}", folder=sub)
    elif path.is_dir():
        for f in sorted(path.glob("*.eml")):
            yield InboundMail(raw=f.read_bytes(), source_id=f"file:{f.resolve()}")
    elif path.is_file() and path.read_bytes()[:5] == b"From ":
        for i, msg in enumerate(mailbox.mbox(str(path))):
            yield InboundMail(raw=msg.as_bytes(), source_id=f"mbox:{path.resolve()}:{i}")
    elif path.is_file():
        yield InboundMail(raw=path.read_bytes(), source_id=f"file:{path.resolve()}")
    else:
        raise MailflowError(f"{path}: no such file or directory")


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    rt = ctx.app.runtime(args.partnership)
    result = IngestResult()
    for p in args.paths:
        for mail in messages(Path(p)):
            outcome, reason = ingest_one(rt, mail)
            result.add(outcome.value)
            print(f"{mail.source_id}: {outcome.value}" + (f" ({reason})" if reason else ""))
    print("ingested: " + (", ".join(f"{n} {k}" for k, n in sorted(result.outcomes.items())) or "nothing"))
    return 0
