"""Audit trail: appending 10^5 chained events, then `audit verify` over them (SQLite and PostgreSQL).

Events are appended through the one append function, 1,000 per transaction, each with a small
detail as the pipeline writes them, all on one partnership's chain (the worst case: one chain).
Verify streams the chain in sequence order and recomputes every hash.

Run: .venv/bin/python -m bench.bench_audit [--events 100000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import psycopg

from bench.results import record
from bench.seed import ADMIN_URL, START, _url, config
from mailflow.app import App
from mailflow.clock import FixedClock
from mailflow.pipeline import audit

SECTION = "Audit trail: 10^5 chained events"


def run(label: str, url: str, events: int, workdir: Path) -> None:
    app = App.open(config(workdir, url), FixedClock(START))
    try:
        started = time.perf_counter()
        for first in range(0, events, 1000):
            with app.db.transaction() as s:
                for i in range(first, min(events, first + 1000)):
                    audit.append_event(s, START, "cli:bench", "note", partnership="SSP", text=f"note {i}", n=i)
        appended = time.perf_counter() - started
        started = time.perf_counter()
        with app.db.transaction() as s:
            verdict = audit.verify(s, "SSP")
        verified = time.perf_counter() - started
        if not verdict.ok or verdict.events != events:
            raise RuntimeError(f"verify: {verdict.events} events, problems {verdict.problems}")
        load = f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        record(SECTION, f"{label}: append {events:,} (1,000 a transaction)", events / appended, "events/s", note=load)
        record(SECTION, f"{label}: audit verify {events:,}", verified, "s", note=load)
    finally:
        app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mailflow-bench-audit-"))
    run("SQLite", f"sqlite:///{workdir / 'audit.db'}", args.events, workdir)
    name = "mailflow_bench_audit"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        run("PostgreSQL", _url(name), args.events, workdir)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
