"""Board report: the read model over 10^5 cases on PostgreSQL, with CSV and XLSX written.

The database (`mailflow_bench_report`, created and dropped here) is seeded in bulk (bench/seed.py:
one real case cloned on the server) with 10^5 cases, then varied on the server: opening days
spread over a year, five raising agencies, stage reached 1-4, states open / resolved / closed /
withdrawn, one case in three recording learning, and the audit events the report reads (opened,
escalated to each stage reached, resolved or withdrawn), with fired deadlines for the overdue.
Each timed run is one `board_report()` over the whole year plus its CSV and XLSX rendering, as
`mailflow report` makes them; peak memory is the Python heap's peak during the run (tracemalloc)
and the process's peak resident set size. Then `mailflow report --format xlsx` as a command, in a
fresh process each run (imports, configuration, schema check, report, file): time and peak RSS;
and the start-up every command pays (`mailflow --help`, `mailflow policy list`).

Run: .venv/bin/python -m bench.bench_report [--cases 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from datetime import date, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import text

from bench.bench_list import _run as launch
from bench.results import record
from bench.seed import START, BenchDatabase
from mailflow.cli.report_cmd import to_csv, to_xlsx
from mailflow.queries.board_report import Period, board_report

SECTION = "Board report over N cases (PostgreSQL)"
AGENCIES = ["Great Western Hospitals NHS Foundation Trust", "Swindon Borough Council - Adult Social Care",
            "Wiltshire Police", "Avon & Wiltshire Partnership NHS Trust", "Meadowview Care Home (example provider)"]


def vary(db: BenchDatabase, app: object) -> None:
    engine = app.db.engine  # type: ignore[attr-defined]
    agencies = "ARRAY[" + ", ".join("'" + a.replace("'", "''") + "'" for a in AGENCIES) + "]"
    with engine.begin() as conn:
        conn.execute(text("""
            UPDATE cases SET opened_at = opened_at - make_interval(days => id % 365),
                             stage = 1 + (id % 4),
                             state = (ARRAY['open', 'resolved', 'closed', 'closed', 'withdrawn'])[1 + id % 5],
                             fields = CASE WHEN id % 3 = 0 THEN (fields::jsonb ||
                                 '{"learning_agency": "Staff training on referral thresholds", "training_needed": true}'
                                 ::jsonb)::json ELSE fields END"""))
        conn.execute(text(f"UPDATE participants SET agency = ({agencies})[1 + case_id % 5] WHERE side = 'raiser'"))
        conn.execute(text("DELETE FROM events"))
        conn.execute(text("""
            INSERT INTO events (partnership, case_id, at, actor, action, detail)
            SELECT 'SSP', c.id, c.opened_at + make_interval(days => 7 * (s - 1)), 'bench',
                   CASE WHEN s = 1 THEN 'opened' ELSE 'escalated' END,
                   CASE WHEN s = 1 THEN json_build_object('stage', 1)
                        ELSE json_build_object('from_stage', s - 1, 'to_stage', s) END
            FROM cases c, generate_series(1, 4) s WHERE s <= c.stage"""))
        conn.execute(text("""
            INSERT INTO events (partnership, case_id, at, actor, action, detail)
            SELECT 'SSP', c.id, c.opened_at + make_interval(days => 7 * c.stage - 2), 'bench',
                   CASE WHEN c.state = 'withdrawn' THEN 'withdrawn' ELSE 'resolved' END,
                   json_build_object('stage', c.stage)
            FROM cases c WHERE c.state <> 'open'"""))
        conn.execute(text("""
            UPDATE deadlines SET state = 'done', due_at = due_at - interval '400 days'
            WHERE case_id % 2 = 0 AND action <> 'remind'"""))
    # VACUUM as well as ANALYZE: the updates above leave every case row and event twice over (dead
    # tuples, hint bits unset) until autovacuum passes, which a production database has had.
    with psycopg.connect(db.url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="leave the database behind")
    args = parser.parse_args()
    db = BenchDatabase(name="mailflow_bench_report")
    app = db.create()
    try:
        t0 = time.perf_counter()
        db.grow(app, args.cases, shift_days="g % 300")
        vary(db, app)
        print(f"seeded {args.cases} cases in {time.perf_counter() - t0:.0f} s", flush=True)
        calendars = {name: p.calendar for name, p in app.policies.items()}
        period = Period(date(2025, 12, 1), START.date() + timedelta(days=1))
        times, heap = [], []
        raised = 0
        for run in range(args.runs + 1):
            tracemalloc.start()
            started = time.perf_counter()
            with app.db.transaction() as s:
                report = board_report(s, period, START + timedelta(days=30), calendars)
            to_csv(report)
            to_xlsx(report)
            elapsed = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            raised = report.raised
            if run:   # the first is a warm-up
                times.append(elapsed)
                heap.append(peak / 2**20)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        median = statistics.median(times)
        load = os.getloadavg()[0]
        note = (f"{raised} cases counted, {len(report.agencies)} agencies, {len(report.stages)} stages; "
                f"load average {load:.1f} on {os.cpu_count()} CPUs while measured")
        record(SECTION, f"report + CSV + XLSX, {args.cases:,} cases (median of {args.runs})", median, "s",
               target="< 2 s", met=median < 2, note=note)
        record(SECTION, "Python heap peak during a run", max(heap), "MB", target="< 200 MB", met=max(heap) < 200,
               note="tracemalloc")
        cli_times, cli_rss = [], 0.0
        command = ["-m", "mailflow.cli.main", "--config", str(db.workdir / "mailflow.toml"),
                   "report", "--from", f"{period.start}", "--to", f"{period.end}", "--format", "xlsx",
                   "--output", str(db.workdir / "board.xlsx"), "--at", (START + timedelta(days=30)).isoformat()]
        for _ in range(args.runs):
            # Timed and measured by bench_list's small launcher process: started straight from here, the
            # command's peak RSS would begin at this process's own high-water mark (the seeding's).
            seconds, peak_mb = launch([sys.executable, *command], db.workdir / "report.out")
            cli_times.append(seconds)
            cli_rss = max(cli_rss, peak_mb)
        cli = statistics.median(cli_times)
        record(SECTION, f"`mailflow report --format xlsx` as a command, {args.cases:,} cases (median of {args.runs})",
               cli, "s", target="< 2 s", met=cli < 2,
               note=f"fresh process each run (imports, config, schema check); load average {os.getloadavg()[0]:.1f}")
        record(SECTION, "`mailflow report` process peak resident set", cli_rss, "MB", target="< 200 MB",
               met=cli_rss < 200, note="largest of the runs (the process's own, wait4 in a small launcher process)")
        record(SECTION, "process peak resident set (whole bench)", rss, "MB", target="< 200 MB", met=rss < 200,
               note="includes the seeding and the interpreter")
        startup(db.workdir / "mailflow.toml", runs=max(args.runs, 5))
    finally:
        app.close()
        if not args.keep:
            db.drop()


def startup(config: Path, runs: int) -> None:
    """What every command pays before its work: `mailflow --help` (argument parsing only) and
    `mailflow policy list` (the configuration loaded and validated, no database)."""
    for name, argv in (("--help", ["--help"]), ("policy list", ["--config", str(config), "policy", "list"])):
        command = [sys.executable, "-m", "mailflow.cli.main", *argv]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)   # warm the file cache
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            samples.append(time.perf_counter() - started)
        value = statistics.median(samples) * 1000
        record(SECTION, f"CLI start-up: `mailflow {name}` (median of {runs})", value, "ms",
               note=f"fresh process each run, start to exit; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
