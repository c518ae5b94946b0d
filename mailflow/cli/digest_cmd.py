"""`mailflow digest [--at ISO] [--preview FILE]`: send, or preview, the business-team digests.

A preview FILE ending in .html gets the HTML digest with its chart inlined (open it in a
browser), one file per partnership when there are several; any other name gets the text."""

from __future__ import annotations

import argparse
from pathlib import Path

from mailflow.cli.context import CliContext
from mailflow.pipeline.digest import render_digests, send_digests


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    now = ctx.clock.now()
    if args.preview:
        digests = render_digests(ctx.app, now)
        target = Path(args.preview)
        if target.suffix.lower() in (".html", ".htm"):
            for d in digests:
                path = target if len(digests) == 1 else target.with_name(f"{target.stem}-{d.prefix}{target.suffix}")
                path.write_text(d.preview_html(), encoding="utf-8")
        else:
            target.write_text("\n\n".join(f"Subject: {d.subject}\n\n{d.text}" for d in digests), encoding="utf-8")
        print(f"wrote {len(digests)} digest(s) to {args.preview}")
        return 0
    n = send_digests(ctx.app, now)
    print(f"queued {n} digest(s); `mailflow outbox flush` or the daemon sends them")
    return 0
