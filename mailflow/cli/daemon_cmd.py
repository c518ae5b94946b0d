"""`mailflow run [--once] [--at ISO]`: the daemon. It brings the database to head first (the one
command besides `db upgrade` that migrates), serves `[status] listen` when set, and stops
gracefully on SIGTERM or SIGINT: the message or send in hand is finished, threads stop, exit 0."""

from __future__ import annotations

import argparse
import signal
from typing import TYPE_CHECKING

from mailflow.cli.context import CliContext
from mailflow.daemon import Daemon, run_pass

if TYPE_CHECKING:
    from mailflow.status_server import StatusServer


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
    status = _status_server(ctx, daemon)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: daemon.stop())
    try:
        daemon.run_forever()
    finally:
        if status is not None:
            status.stop()
    return 0


def _status_server(ctx: CliContext, daemon: Daemon) -> StatusServer | None:
    listen = ctx.config.status.listen
    if not listen:
        return None
    from mailflow.metrics import register_database
    from mailflow.status_server import StatusServer

    for rt in daemon.runtimes:
        rt.source  # noqa: B018 - built now, before the status thread could build one of its own
    server = StatusServer(daemon.app, listen, daemon.started).start()
    register_database(daemon.app)
    return server
