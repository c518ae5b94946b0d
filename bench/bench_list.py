"""`mailflow cases list` and the digest over 10^5 cases on PostgreSQL: time and peak memory.

The database (`mailflow_bench_list`, created and dropped here) is seeded in bulk (bench/seed.py)
with 10^5 Swindon cases: 60% open (at stages 1 to 3), 20% resolved, 10% closed (their deadlines
done), 10% incomplete. Each figure is one command in a fresh process, timed from start to exit
(interpreter start and imports included) with the process's own peak RSS (wait4, from a small
launcher process: see _LAUNCHER); the median of several runs after a warm-up. `cases list
--format json` writes the whole list (to a file); the digest is `render_digests`
(mailflow/pipeline/digest.py: every partnership's digest context read and rendered, nothing sent).

Run: .venv/bin/python -m bench.bench_list [--cases 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

# The seeding and results modules (bench.seed imports the ingest pipeline and the tests' helpers)
# are imported in main() only: the digest's child process times the digest, not the bench.

SECTION = "Case list and digest over 10^5 cases (PostgreSQL)"
AT = "2027-01-15T10:00:00"   # the digest's and list's instant: some deadlines passed, most not
ROOT = Path(__file__).resolve().parents[1]


# Each command is started by this small launcher, itself a fresh process, which times it and reads
# its peak RSS. Started straight from the bench (vfork + exec), a command's ru_maxrss would begin at
# the bench's own high-water mark (Linux keeps the larger of the two across exec): after checking
# the list's 30 MB of JSON, that was ~250 MB, whatever the command used.
_LAUNCHER = """
import os, subprocess, sys, time
started = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(proc.pid, 0)
sys.stderr.write(f"\\n@@ {time.perf_counter() - started} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}\\n")
"""


def _run(argv: list[str], output: Path) -> tuple[float, float]:
    """Seconds from start to exit, and the process's own peak RSS in MB."""
    with output.open("wb") as out:
        proc = subprocess.run([sys.executable, "-c", _LAUNCHER, *argv], stdout=out, stderr=subprocess.PIPE,
                              cwd=ROOT, check=False)
    err = proc.stderr.decode(errors="replace")
    head, _, last = err.rstrip("\n").rpartition("\n@@ ")
    seconds, maxrss_kib, returncode = last.split()
    if proc.returncode != 0 or int(returncode) != 0:
        raise RuntimeError(f"{' '.join(argv[-4:])} exited {returncode}: {head[-500:]}")
    return float(seconds), int(maxrss_kib) / 1024   # Linux: KiB


def _digest_child(config: str, at: str) -> None:
    """In the child process: the digest of every partnership, rendered, nothing sent."""
    from mailflow.app import App
    from mailflow.clock import FixedClock, parse_instant
    from mailflow.config import load_config
    from mailflow.pipeline.digest import render_digests

    now = parse_instant(at)
    app = App.open(load_config(Path(config)), FixedClock(now), upgrade=False)
    try:
        digests = render_digests(app, now)
        sys.stdout.write(json.dumps([{"subject": d.subject, "chars": len(d.text) + len(d.html)} for d in digests]))
    finally:
        app.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="leave the database behind")
    ap.add_argument("--digest-child", nargs=2, metavar=("CONFIG", "AT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.digest_child:
        _digest_child(*args.digest_child)
        return
    from sqlalchemy import text

    from bench.results import record
    from bench.seed import START, BenchDatabase

    db = BenchDatabase(name="mailflow_bench_list")
    app = db.create()
    try:
        t0 = time.perf_counter()
        db.grow(app, args.cases, shift_days="(g % 60) - 10",
                state="CASE WHEN g % 10 < 6 THEN 'open' WHEN g % 10 < 8 THEN 'resolved' "
                      "WHEN g % 10 = 8 THEN 'closed' ELSE 'incomplete' END",
                stage="CASE WHEN g % 10 < 6 THEN 1 + g % 3 ELSE 1 END")
        with app.db.engine.begin() as conn:
            conn.execute(text("UPDATE deadlines SET state = 'done', done_at = :at FROM cases "
                              "WHERE deadlines.case_id = cases.id AND cases.state = 'closed'"), {"at": START})
            # What a resolved or closed case carries: when it was resolved (and closed).
            conn.execute(text("UPDATE cases SET resolved_at = opened_at + interval '2 days', "
                              "closed_at = CASE WHEN state = 'closed' THEN opened_at + interval '5 days' END, "
                              "outcome = 'agreed' WHERE state IN ('resolved', 'closed')"))
        print(f"  seeded {args.cases:,} cases in {time.perf_counter() - t0:.0f} s", flush=True)
        config = str(db.workdir / "mailflow.toml")
        out = db.workdir / "out"
        commands = {
            "cases list --format json": [sys.executable, "-m", "mailflow", "--config", config, "cases", "list",
                                         "--format", "json"],
            "digest (render_digests)": [sys.executable, "-m", "bench.bench_list", "--digest-child", config, AT],
        }
        for label, argv_ in commands.items():
            _run(argv_, out)   # warm-up
            runs = [_run(argv_, out) for _ in range(args.runs)]
            seconds = statistics.median(r[0] for r in runs)
            peak = statistics.median(r[1] for r in runs)
            size = out.stat().st_size
            if label.startswith("cases list"):
                listed = json.loads(out.read_text())
                if len(listed) != args.cases:
                    raise RuntimeError(f"cases list wrote {len(listed)} cases, expected {args.cases}")
            note = (f"median of {args.runs} runs after a warm-up ({', '.join(f'{r[0]:.2f}' for r in runs)} s); "
                    f"a fresh process each, start to exit; output {size / 1e6:.1f} MB")
            record(SECTION, f"{label}: time", seconds, "s", target="< 2 s", met=seconds < 2, note=note)
            record(SECTION, f"{label}: peak RSS", peak, "MB", target="< 200 MB", met=peak < 200,
                   note="the process's own peak resident set (wait4 in a small launcher process)")
    finally:
        app.close()
        if not args.keep:
            db.drop()


if __name__ == "__main__":
    main()
