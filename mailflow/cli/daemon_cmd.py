"""`mailflow run [--once] [--at ISO]`: the daemon."""

from __future__ import annotations

import argparse
import signal

from mailflow.cli.context import CliContext
from mailflow.daemon import Daemon, run_pass


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    app = ctx.upgraded_app()
    if args.once:
        report = run_pass(app)
        for prefix, outcomes in report.ingested.items():
            counts = ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items()))
            print(f"{prefix}: mailbox: {counts or 'nothing new'}")
        for prefix, n in report.fired.items():
            print(f"{prefix}: deadlines: {n} fired")
        for prefix, n in report.sent.items():
            print(f"{prefix}: outbox: {n} sent")
        for error in report.errors:
            print(f"error: {error}")
        return 1 if report.errors else 0
    daemon = Daemon(app)
    signal.signal(signal.SIGTERM, lambda *_: daemon.stop())
    try:
        daemon.run_forever()
    except KeyboardInterrupt:
        daemon.stop()
    return 0
