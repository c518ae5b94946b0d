"""`mailflow db upgrade`."""

from __future__ import annotations

import argparse

from mailflow.cli.context import CliContext
from mailflow.db.database import Database


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    db = Database(ctx.config.database_url)
    try:
        db.upgrade()
    finally:
        db.dispose()
    print(f"database is up to date ({db.engine.url.render_as_string(hide_password=True)})")
    return 0
