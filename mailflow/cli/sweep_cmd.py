"""`mailflow sweep [--at ISO] [--dry-run]`: act on deadlines due as of a time."""

from __future__ import annotations

import argparse

from mailflow.cli.context import CliContext
from mailflow.pipeline.sweep import sweep


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    now = ctx.clock.now()
    for rt in ctx.app.runtimes():
        result = sweep(rt, now, dry_run=args.dry_run)
        verb = "would fire" if args.dry_run else "fired"
        for f in result.fired:
            print(f"{rt.prefix}: {verb} {f.action} for {f.reference} stage {f.stage} {f.step} "
                  f"(due {f.due_at.isoformat()})" + (f": {f.done}" if f.done else ""))
        for subject, recipients in result.queued:
            print(f"    would send: {subject}  ->  {', '.join(recipients)}")
        print(f"{rt.prefix}: {len(result.fired)} deadline(s) {verb}, {result.skipped} no longer applied")
    return 0
