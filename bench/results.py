"""Figures from the bench modules, collected for `bench/RESULTS.md`.

A bench module measures, then calls `record()` once per figure::

    from bench.results import record
    record("Sweep", "1,000 due among 10^6 open cases", 0.41, "s",
           target="< 1 s", met=0.41 < 1, note="reminders rendered and composed")

`make bench` (`python -m bench`) runs every `bench/bench_*.py` in its own process with
MAILFLOW_BENCH_RESULTS naming a JSON-lines file; `record()` appends one line there (it is safe to
call from a module's subprocesses too) and always prints the figure. Run on its own, a module just
prints. The collector (`bench/__main__.py`) then writes RESULTS.md: one table per section, in the
order sections were first recorded.

Repeats: a module should measure several runs itself and record their median (`median()` below).
If the same section and figure are recorded more than once, the report shows the median value and
ratio and, where `met` differs between the records, says in how many of them the target was met.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

ENV_FILE = "MAILFLOW_BENCH_RESULTS"


@dataclass(frozen=True)
class Figure:
    section: str
    figure: str
    value: float | str
    unit: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""


def record(section: str, figure: str, value: float | str, unit: str = "", *, ratio: float | None = None,
           target: str = "", met: bool | None = None, note: str = "") -> None:
    """Record one figure of a benchmark section (printed, and collected when run by `make bench`).

    `value` is the measured figure (a number, or a short text such as "n/a"); `unit` its unit
    ("s", "ms", "MB", "msg/s"); `ratio` the figure as a ratio where that is the honest measure
    (e.g. time(10^6)/time(10^5)); `target` the issue's target in words ("< 1 s", "<= 1.2");
    `met` whether it was met (None: no target); `note` what was measured, truthfully.
    """
    fig = Figure(section, figure, value if isinstance(value, str) else float(value), unit,
                 None if ratio is None else float(ratio), target, met, note)
    print(f"  [{section}] {figure}: {_format_value(fig.value)} {unit}".rstrip()
          + (f"  ratio {fig.ratio:.3g}" if fig.ratio is not None else "")
          + (f"  target {target}: {'met' if met else 'NOT met'}" if met is not None else ""), flush=True)
    path = os.environ.get(ENV_FILE)
    if path:
        line = json.dumps(asdict(fig)) + "\n"
        # One write() of a short line in append mode: safe alongside other processes' appends.
        with open(path, "a", encoding="utf-8") as out:
            out.write(line)


def median(runs: int, measure: Callable[[], float]) -> tuple[float, list[float]]:
    """Call `measure` `runs` times; return the median and every sample (for a note)."""
    samples = [measure() for _ in range(runs)]
    return statistics.median(samples), samples


def load(path: Path) -> list[Figure]:
    """The figures a run wrote, repeats of one (section, figure) merged into one row."""
    raw: list[Figure] = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                raw.append(Figure(**json.loads(line)))
    merged: dict[tuple[str, str], list[Figure]] = {}
    for fig in raw:
        merged.setdefault((fig.section, fig.figure), []).append(fig)
    return [_merge(group) for group in merged.values()]


def _merge(group: list[Figure]) -> Figure:
    if len(group) == 1:
        return group[0]
    first = group[0]
    numbers = [f.value for f in group if not isinstance(f.value, str)]
    value: float | str = statistics.median(numbers) if len(numbers) == len(group) else group[-1].value
    ratios = [f.ratio for f in group if f.ratio is not None]
    ratio = statistics.median(ratios) if ratios else None
    mets = [f.met for f in group if f.met is not None]
    met: bool | None = None
    note = group[-1].note
    if mets:
        met = all(mets) if len(set(mets)) == 1 else None
        if len(set(mets)) > 1:
            note = f"target met in {sum(mets)} of {len(mets)} runs. {note}".strip()
    note = f"median of {len(group)} records. {note}".strip()
    return Figure(first.section, first.figure, value, first.unit, ratio, first.target, met, note)


def _format_value(value: float | str) -> str:
    if isinstance(value, str):
        return value
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def unmet_explained(figures: list[Figure], limits: list[dict[str, str]]) -> str:
    """For each figure whose target was not met: what limits it and what was tried (bench/limits.toml)."""
    unmet = [f for f in figures if f.met is False]
    if not unmet:
        return "## Targets not met\n\nNone: every target was met in this run.\n"
    out = ["## Targets not met: what limits them, what was tried\n"]
    for f in unmet:
        known = next((entry for entry in limits if f.section.startswith(entry["section"])
                      and entry["figure"] in f.figure), None)
        out.append(f"- **{f.section}: {f.figure}** ({_format_value(f.value)} {f.unit}, target {f.target}).".replace(
            " )", ")"))
        if known is None:
            out.append("  - Not explained in bench/limits.toml: a change since it was written?")
        else:
            out.append(f"  - What limits it: {known['limits']}")
            out.append(f"  - What was tried: {known['tried']}")
    out.append("")
    return "\n".join(out)


def load_limits(path: Path) -> list[dict[str, str]]:
    import tomllib

    with path.open("rb") as fh:
        return list(tomllib.load(fh).get("limit", []))


def markdown_tables(figures: list[Figure]) -> str:
    """One Markdown table per section, sections in first-recorded order."""
    sections: dict[str, list[Figure]] = {}
    for fig in figures:
        sections.setdefault(fig.section, []).append(fig)
    out: list[str] = []
    for section, rows in sections.items():
        out.append(f"## {section}\n")
        out.append("| Figure | Value | Ratio | Target | Met | Note |")
        out.append("|---|---:|---:|---|---|---|")
        for f in rows:
            value = f"{_format_value(f.value)} {f.unit}".strip()
            ratio = "" if f.ratio is None else f"{f.ratio:.3g}"
            met = "" if f.met is None else ("met" if f.met else "**not met**")
            if f.met is None and "target met in" in f.note:
                met = "mixed"
            out.append(f"| {_cell(f.figure)} | {_cell(value)} | {ratio} | {_cell(f.target)} | {met} "
                       f"| {_cell(f.note)} |")
        out.append("")
    return "\n".join(out)
