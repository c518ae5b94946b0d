"""Sweep cost against the number of cases: it should follow what is due, not what exists.

Builds N open cases with their deadline rows (SQLite, a temp directory), then times a sweep with
nothing due and a sweep with 50 cases due, for N = 1,000 and 20,000.
"""

from __future__ import annotations

import tempfile
import time
from datetime import timedelta
from pathlib import Path

from mailflow.app import App
from mailflow.clock import FixedClock, parse_instant
from mailflow.config import embedded_default
from mailflow.db.models import Case, Deadline
from mailflow.pipeline.sweep import sweep

START = parse_instant("2026-12-21T10:00")


def _populate(app: App, n: int, due: int) -> None:
    with app.db.transaction() as s:
        for i in range(n):
            case = Case(reference=f"SSP-2026-{i + 1:05d}", partnership="SSP", policy="swindon", state="open",
                        stage=1, urgent=False, fields={}, missing=[], opened_at=START, stage_started_at=START,
                        updated_at=START)
            s.add(case)
            # Most cases fall due next year; `due` of them are overdue now.
            at = START + (timedelta(hours=1) if i < due else timedelta(days=400))
            s.add(Deadline(case=case, stage=1, step="resolve", action="remind", due_at=at, rule="bench",
                           skipped=[], created_at=START))
            s.add(Deadline(case=case, stage=1, step="resolve", action="escalate", due_at=at + timedelta(days=1),
                           rule="bench", skipped=[], created_at=START))


def _time_sweep(n: int, due: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        config = embedded_default(Path(tmp))
        clock = FixedClock(START + timedelta(hours=2))
        app = App.open(config, clock)
        try:
            _populate(app, n, due)
            started = time.perf_counter()
            fired = len(sweep(app.runtime(), clock.now()).fired)
            return time.perf_counter() - started, fired
        finally:
            app.close()


def main() -> None:
    print("sweep time vs. cases (SQLite; reminders only, so no mail rendering dominates)")
    for n in (1_000, 20_000):
        for due in (0, 50):
            seconds, fired = _time_sweep(n, due)
            print(f"  {n:6d} cases, {due:3d} due: {seconds * 1000:8.1f} ms  ({fired} fired)")


if __name__ == "__main__":
    main()
