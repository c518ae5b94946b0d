"""`mailflow audit verify [--partnership P]`: check every partnership's hash-chained audit trail.

Prints, per partnership, how many events were checked (and how many were erased by retention),
the chain head (seq and hash: note it elsewhere to detect a rewrite of the whole chain later),
and every problem found, naming the event. Exit 1 when any chain fails.
"""

from __future__ import annotations

import argparse

from mailflow.cli.context import CliContext
from mailflow.errors import MailflowError
from mailflow.pipeline import audit


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    if args.audit_command != "verify":   # pragma: no cover - argparse allows only verify
        raise MailflowError(f"unknown audit command {args.audit_command}")
    failed = False
    with ctx.app.db.transaction() as s:
        known = audit.partnerships(s)
        wanted = [ctx.config.partnership(args.partnership).prefix] if args.partnership else known
        for prefix in wanted:
            verdict = audit.verify(s, prefix)
            problems = verdict.problems or []
            status = "OK" if not problems else f"FAILED ({len(problems)} problem{'s' if len(problems) > 1 else ''})"
            print(f"{prefix}: {status}: {verdict.events} events checked ({verdict.erased} erased by retention); "
                  f"head seq {verdict.head_seq} {verdict.head_hash}")
            for problem in problems:
                print(f"  {problem}")
            failed = failed or bool(problems)
    return 1 if failed else 0
