"""`mailflow doctor`: the database, the reply-token key, and for each partnership its mailbox and
transport, checked for real. Exit 1 when any check fails."""

from __future__ import annotations

import argparse

from mailflow.cli.context import CliContext
from mailflow.diagnostics import Result, check_database, check_secret, check_source, check_transport


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    config = ctx.config  # a ConfigError here is reported by main() with exit code 2
    print(f"config: {getattr(config, 'source_name', 'loaded')}: OK")
    healthy = _report("database", check_database(config.database_url))
    healthy &= _report("secret", check_secret(config))
    for p in config.partnerships:
        for table, options in (("mailbox", p.mailbox), ("transport", p.transport)):
            env = config.connector_env(p, table)
            if table == "mailbox":
                result = check_source(options, env)
            else:
                result = check_transport(options, env, send_test=args.send_test)
            healthy &= _report(f"{p.name}: {table}", result)
    return 0 if healthy else 1


def _report(what: str, result: Result) -> bool:
    ok, lines = result
    mark = "OK" if ok else "FAIL"
    for i, line in enumerate(lines):
        print(f"{what}: {mark}: {line}" if i == 0 else f"    {line}")
    return ok
