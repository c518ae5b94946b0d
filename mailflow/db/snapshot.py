"""Independent read-only queries run side by side on PostgreSQL, all reading one snapshot.

The caller's transaction exports its snapshot (pg_export_snapshot, as pg_dump -j does); each part
runs on its own pooled connection in a REPEATABLE READ transaction that imports it. The parts'
figures agree with each other exactly as if the caller's transaction had read them one after the
other, and the server works on them at once (the Board report's aggregates, the overview's
counts: on 2 CPUs nearly twice as fast). Elsewhere (SQLite) the parts run in turn on the caller's
session. Nothing the caller has written and not committed is seen by the parts: give them reads only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

_SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+-[0-9]+")


def on_one_snapshot(s: Session, parts: Sequence[Callable[[Session], Any]], *, name: str,
                    meanwhile: Callable[[], object] = lambda: None, work_mem: str | None = None) -> list[Any]:
    """Each part's result, in order. `meanwhile` runs on this thread as the parts do; `work_mem`
    ("64MB") is set for the parts' transactions; `name` names their threads."""
    if s.get_bind().dialect.name != "postgresql":
        results = [part(s) for part in parts]
        meanwhile()
        return results
    snapshot = str(s.execute(text("SELECT pg_export_snapshot()")).scalar_one())
    if not _SNAPSHOT_ID.fullmatch(snapshot):   # it is inlined below: SET takes no parameters
        raise RuntimeError(f"unexpected snapshot id {snapshot!r}")
    if work_mem is not None and not re.fullmatch(r"[0-9]+[kM]B", work_mem):
        raise ValueError(f"work_mem {work_mem!r}")
    engine = s.get_bind().engine

    def run(part: Callable[[Session], Any]) -> Any:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, \
                Session(bind=conn) as worker:
            worker.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
            if work_mem is not None:
                worker.execute(text(f"SET LOCAL work_mem = '{work_mem}'"))
            try:
                return part(worker)
            finally:
                worker.rollback()   # read only: nothing to keep

    # The caller's transaction stays open until every part has finished: the snapshot stays valid.
    with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix=name) as pool:
        futures = [pool.submit(run, part) for part in parts]
        meanwhile()
        return [f.result() for f in futures]
