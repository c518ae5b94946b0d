"""`mailflow quarantine list|show ID|release ID|discard ID --reason TEXT`: the business team's review
of what mailflow would not act on. Every action (and every `show`) is an audit event naming who:
`--by NAME`, else the operating-system user."""

from __future__ import annotations

import argparse
from pathlib import Path

from mailflow.cli.context import CliContext
from mailflow.core.humanize import local_stamp
from mailflow.pipeline import quarantine
from mailflow.pipeline.audit import reader
from mailflow.private_files import create_private_file


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    return {"list": _list, "show": _show, "release": _release, "discard": _discard}[args.quarantine_command](args, ctx)


def _list(args: argparse.Namespace, ctx: CliContext) -> int:
    prefix = ctx.config.partnership(args.partnership).prefix if args.partnership else None
    with ctx.app.db.transaction() as s:
        rows = quarantine.list_held(s, prefix, everything=args.all)
    if not rows:
        print("nothing quarantined")
        return 0
    for r in rows:
        print(f"#{r.id:<6} {r.partnership:6} {local_stamp(r.received_at)}  {r.outcome:11} {r.kind or '?':10} "
              f"{r.size:>8} B  from {r.sender or '(no usable From)'}\n        {r.reason or ''}")
    return 0


def _show(args: argparse.Namespace, ctx: CliContext) -> int:
    shown = quarantine.show(ctx.app, args.id, reader(args.by), ctx.clock.now())
    h = shown.held
    print(f"#{h.id}  {h.outcome}  partnership {h.partnership}  received {local_stamp(h.received_at)}")
    print(f"  reason:      {h.reason or ''}")
    print(f"  from:        {h.sender or '(no usable From)'}")
    print(f"  to:          {', '.join(shown.to)}")
    print(f"  subject:     {shown.subject}")
    print(f"  date:        {local_stamp(shown.date) if shown.date else ''}")
    print(f"  message-id:  {shown.message_id or ''}")
    print(f"  size:        {h.size} bytes, sha256 {shown.sha256}")
    if shown.attachments:
        print(f"  attachments: {', '.join(shown.attachments)}")
    if shown.parse_problem:
        print(f"  not readable: {shown.parse_problem}")
    if args.raw:
        path = Path(args.raw)
        create_private_file(path)
        path.write_bytes(shown.raw)
        print(f"  raw message written to {path}")
    if shown.text:
        print("\n" + shown.text)
    return 0


def _release(args: argparse.Namespace, ctx: CliContext) -> int:
    done = quarantine.release(ctx.app, args.id, reader(args.by), ctx.clock.now(), note=args.reason)
    where = f" (case {done.case_reference})" if done.case_reference else ""
    print(f"#{done.id} released: {done.outcome}{where}" + (f": {done.reason}" if done.reason else ""))
    return 0


def _discard(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.app.db.transaction() as s:
        held = quarantine.discard(s, args.id, reader(args.by), args.reason, ctx.clock.now())
    print(f"#{held.id} discarded: {args.reason}")
    return 0
