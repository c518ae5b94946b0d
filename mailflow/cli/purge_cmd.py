"""`mailflow purge [--dry-run]`: remove what is past each partnership's retention period
(`retention_years_after_closure`), keeping anonymous counts for Board reports; see
mailflow/pipeline/retention.py. `--dry-run` says what would go and changes nothing."""

from __future__ import annotations

import argparse

from mailflow.cli.context import CliContext
from mailflow.core.humanize import local_stamp
from mailflow.pipeline.audit import reader
from mailflow.pipeline.retention import purge


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    plans = purge(ctx.app, ctx.clock.now(), reader(args.by), dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for p in plans:
        print(f"{p.partnership}: closed before {local_stamp(p.before)} ({p.years} years): {verb} "
              f"{len(p.case_ids)} cases, {len(p.inbound_ids)} messages in, {len(p.outbox_ids)} messages out, "
              f"{len(p.files)} sent-mail files; {'would erase' if args.dry_run else 'erased'} "
              f"the content of {len(p.event_ids)} audit events")
        if p.references:
            print("  " + ", ".join(p.references))
    return 0
