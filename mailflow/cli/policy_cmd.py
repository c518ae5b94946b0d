"""`mailflow policy`."""

from __future__ import annotations

import argparse

from mailflow.cli.context import CliContext
from mailflow.errors import NotBuiltYet


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    raise NotBuiltYet("'policy' is not built yet")
