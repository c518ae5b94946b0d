"""`mailflow digest [--at ISO] [--preview FILE]`: send, or preview, the business-team digests."""

from __future__ import annotations

import argparse
from pathlib import Path

from mailflow.cli.context import CliContext
from mailflow.pipeline.digest import render_digests, send_digests


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    now = ctx.clock.now()
    if args.preview:
        digests = render_digests(ctx.app, now)
        text = "\n\n".join(f"Subject: {d.subject}\n\n{d.text}" for d in digests)
        Path(args.preview).write_text(text)
        print(f"wrote {len(digests)} digest(s) to {args.preview}")
        return 0
    n = send_digests(ctx.app, now)
    print(f"queued {n} digest(s); `mailflow outbox flush` or the daemon sends them")
    return 0
