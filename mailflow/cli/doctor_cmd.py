"""`mailflow doctor`: for each partnership, connect to its mailbox and transport for real."""

from __future__ import annotations

import argparse

from mailflow.cli.context import CliContext
from mailflow.diagnostics import check_source, check_transport


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    config = ctx.config  # a ConfigError here is reported by main() with exit code 2
    print(f"config: {getattr(config, 'source_name', 'loaded')}: OK")
    healthy = True
    for p in config.partnerships:
        for table, options in (("mailbox", p.mailbox), ("transport", p.transport)):
            env = config.connector_env(p, table)
            if table == "mailbox":
                ok, lines = check_source(options, env)
            else:
                ok, lines = check_transport(options, env, send_test=args.send_test)
            healthy &= ok
            mark = "OK" if ok else "FAIL"
            for i, line in enumerate(lines):
                prefix = f"{p.name}: {table}: {mark}: " if i == 0 else "    "
                print(prefix + line)
    return 0 if healthy else 1
