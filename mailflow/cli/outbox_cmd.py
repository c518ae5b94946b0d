"""`mailflow outbox list | flush`."""

from __future__ import annotations

import argparse

from sqlalchemy import select

from mailflow.cli.context import CliContext
from mailflow.db.models import OutboxMessage
from mailflow.pipeline.sender import drain


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    app = ctx.app
    if args.outbox_command == "flush":
        now = ctx.clock.now()
        for rt in app.runtimes():
            result = drain(rt, now, limit=10_000)
            print(f"{rt.prefix}: {result.sent} sent, {result.retried} to retry, {result.failed} failed")
        return 0
    with app.db.transaction() as s:
        rows = s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        for r in rows:
            print(f"#{r.id} {r.state:8} {r.created_at:%Y-%m-%d %H:%M} {r.kind:22} {r.subject}  ->  "
                  f"{', '.join(r.recipients)}" + (f"  [{r.last_error}]" if r.last_error else ""))
        if not rows:
            print("the outbox is empty")
    return 0
