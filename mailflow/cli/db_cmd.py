"""`mailflow db upgrade`: bring the schema to this mailflow's newest migration (on PostgreSQL under
an advisory lock, so it is safe while workers start)."""

from __future__ import annotations

import argparse

from mailflow.cli.context import CliContext
from mailflow.db.database import Database


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    db = Database(ctx.config.database_url)
    try:
        before = db.upgrade()
        head = db.revisions()[1]
    finally:
        db.dispose()
    if before == head:
        print(f"database is up to date at {head} ({db.shown_url})")
    else:
        print(f"database upgraded from {before or 'empty'} to {head} ({db.shown_url})")
    return 0
