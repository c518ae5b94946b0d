"""`mailflow demo`: the self-contained demo of the main job (see mailflow/demo.py)."""

from __future__ import annotations

import argparse
import logging

from mailflow.cli.context import CliContext


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    from mailflow.demo import run_demo

    if not args.verbose:
        logging.getLogger().setLevel(logging.WARNING)  # the demo prints its own account
    return run_demo()
