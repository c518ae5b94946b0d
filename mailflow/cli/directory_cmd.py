"""`mailflow directory check`: what is missing or inconsistent in each partnership's directory."""

from __future__ import annotations

import argparse

from mailflow.cli.context import CliContext
from mailflow.directory import Directory


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    worst = 0
    for p in ctx.config.partnerships:
        directory = Directory.load(p.directory, p.business_team)
        problems = directory.problems()
        where = p.directory or "(no directory file)"
        print(f"{p.prefix}: {where}: {len(directory.agencies)} agencies, {len(problems)} problem(s)")
        for problem in problems:
            print(f"  - {problem}")
        worst = worst or (1 if problems else 0)
    return worst
