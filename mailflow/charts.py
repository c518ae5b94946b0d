"""Charts drawn on the server as PNG (matplotlib's Agg canvas: no display, no pyplot global state,
safe in the daemon's threads). Pure: numbers in, bytes out."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

# Light to dark: the older a case, the darker its part of the bar.
AGE_COLOURS = ("#c6dbef", "#6baed6", "#2171b5", "#08306b")


def open_cases_by_stage_and_age(counts: Mapping[int, Sequence[int]], bands: Sequence[str],
                                stage_names: Mapping[int, str]) -> bytes:
    """A horizontal stacked bar per stage (Stage 1 on top), its parts the open cases by age band."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    stages = sorted(counts)
    height = 1.3 + 0.3 * max(len(stages), 1)
    fig = Figure(figsize=(7.2, height), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    labels = [stage_names.get(st, f"Stage {st}") for st in stages]
    y = list(range(len(stages)))
    left = [0] * len(stages)
    for i, band in enumerate(bands):
        widths = [counts[st][i] for st in stages]
        bars = ax.barh(y, widths, left=left, color=AGE_COLOURS[i % len(AGE_COLOURS)], label=band, height=0.62)
        for bar, w in zip(bars, widths, strict=True):
            if w:
                ax.text(bar.get_x() + bar.get_width() / 2, bar.get_y() + bar.get_height() / 2, str(w),
                        ha="center", va="center", fontsize=8, color="white" if i >= 1 else "#08306b")
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set_yticks(y, labels, fontsize=9)
    ax.set_ylim(len(stages) - 0.5, -0.5)   # Stage 1 on top, bars of one height whatever the count
    ax.set_xlabel("open cases", fontsize=9)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(axis="x", labelsize=8)
    ax.set_xlim(0, max(max(left, default=0), 1) * 1.05)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(title="age since opened", title_fontsize=8, loc="lower left", bbox_to_anchor=(0.0, 1.0),
              ncol=len(bands), fontsize=8, frameon=False, alignment="left")
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()
