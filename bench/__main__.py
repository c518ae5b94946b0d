"""`make bench`: run every bench/bench_*.py in its own process and write bench/RESULTS.md.

Each module's `main()` runs with its own defaults (`python -m bench.<module>`), with
MAILFLOW_BENCH_RESULTS naming the file its `bench.results.record()` calls append to. A module that
fails or overruns its time limit is reported as such; the others still run.

Run: .venv/bin/python -m bench [bench_sweep bench_list ...] [--timeout 420] [--output bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import json
import os
import pkgutil
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.results import ENV_FILE, load, load_limits, markdown_tables, unmet_explained

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PG_URL = os.environ.get("MAILFLOW_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _postgres_version() -> str:
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else "unknown"
    except Exception as exc:  # noqa: BLE001 - a missing server is a fact for the report, not a failure
        return f"not reachable ({type(exc).__name__})"


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _commit() -> str:
    head = _git("rev-parse", "--short=12", "HEAD") or "unknown"
    dirty = [line for line in _git("status", "--porcelain", "--untracked-files=no").splitlines()
             if not line.endswith("bench/RESULTS.md")]
    return head + (" (with uncommitted changes)" if dirty else "")


def _load() -> str:
    try:
        one, five, _ = os.getloadavg()
        return f"{one:.2f} / {five:.2f}"
    except OSError:
        return "unknown"


def reference_ms() -> float:
    """A fixed pure-Python workload (building, encoding and decoding 60,000 small records; 900,000
    multiplications), median of 3, in ms: the machine's speed at that moment. On a shared machine it
    moves by a third from one hour to the next; taken between modules, it shows whether a figure
    was slow because the code was or because the machine was."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        records = [{"n": i, "text": str(i) * 3, "flag": i % 2 == 0} for i in range(60_000)]
        json.loads(json.dumps(records))
        sum(i * i for i in range(900_000))
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modules", nargs="*", help="bench modules to run (default: every bench_*.py)")
    ap.add_argument("--timeout", type=float, default=float(os.environ.get("MAILFLOW_BENCH_TIMEOUT", 420)),
                    help="seconds one module may run (default 420)")
    ap.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    args = ap.parse_args(argv)
    names = [n.removeprefix("bench.").removesuffix(".py") for n in args.modules] or _modules()
    unknown = sorted(set(names) - set(_modules()))
    if unknown:
        print(f"mailflow bench: no such bench module: {', '.join(unknown)}", file=sys.stderr)
        return 2

    started_at = datetime.now(UTC)
    load_before = _load()
    runs: list[tuple[str, float, str]] = []
    speed: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="mailflow-bench-") as tmp:
        results = Path(tmp) / "results.jsonl"
        env = dict(os.environ, **{ENV_FILE: str(results)})
        for name in names:
            speed.append((name, reference_ms()))
            print(f"\n=== {name} (reference workload {speed[-1][1]:.0f} ms)", flush=True)
            t0 = time.perf_counter()
            try:
                proc = subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=ROOT, env=env,
                                      timeout=args.timeout)
                status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
            except subprocess.TimeoutExpired:
                status = f"stopped after {args.timeout:.0f} s (time limit)"
            runs.append((name, time.perf_counter() - t0, status))
            print(f"=== {name}: {status}, {runs[-1][1]:.0f} s", flush=True)
        figures = load(results)
    speed.append(("the end", reference_ms()))

    total = sum(seconds for _, seconds, _ in runs)
    lines = [
        "# mailflow benchmark results",
        "",
        "Written by `make bench` (`python -m bench`); every figure below comes from that run.",
        "",
        f"- Date: {started_at:%Y-%m-%d %H:%M} UTC",
        f"- Commit: {_commit()}",
        f"- CPU: {_cpu_model()}, {os.cpu_count()} CPUs",
        f"- RAM: {_ram()}",
        f"- Python: {platform.python_version()} ({platform.python_implementation()}), {platform.system()}",
        f"- PostgreSQL: {_postgres_version()}",
        f"- Load average (1 / 5 min) before: {load_before}, after: {_load()}"
        " (the machine may be shared; figures are medians of several runs unless a note says otherwise)",
        f"- Total time: {total:.0f} s",
        "- Machine speed: a fixed pure-Python workload (bench/__main__.py `reference_ms`) took "
        + ", ".join(f"{ms:.0f} ms before {name}" if name != "the end" else f"{ms:.0f} ms at the end"
                    for name, ms in speed)
        + " (a larger figure: a slower machine at that moment, whatever the code)",
        "",
        markdown_tables(figures) if figures else "No figures were recorded.\n",
        unmet_explained(figures, load_limits(HERE / "limits.toml")),
        "## Modules run",
        "",
        "| Module | Time | Status |",
        "|---|---:|---|",
        *(f"| {name} | {seconds:.0f} s | {status} |" for name, seconds, status in runs),
        "",
    ]
    args.output.write_text("\n".join(lines), encoding="utf-8")
    print(f"\nwrote {args.output} ({len(figures)} figures, {total:.0f} s)")
    return 0 if all(status == "ok" for _, _, status in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
