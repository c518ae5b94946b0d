"""Charts drawn on the server as PNG with Pillow (no display, no global state, safe in the daemon's
threads). Pure: numbers in, bytes out.

Pillow rather than matplotlib: the digest's one chart is a handful of rectangles and labels, and
importing matplotlib and laying out a figure cost a fresh `mailflow digest` process ~0.8 s and
~40 MB of its peak memory (10^5 cases, PostgreSQL); this draws the same chart in a few ms.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.ImageFont import FreeTypeFont, ImageFont

# Light to dark: the older a case, the darker its part of the bar.
AGE_COLOURS = ("#c6dbef", "#6baed6", "#2171b5", "#08306b")
INK = "#222222"
DPI = 110
WIDTH = int(7.2 * DPI)


def open_cases_by_stage_and_age(counts: Mapping[int, Sequence[int]], bands: Sequence[str],
                                stage_names: Mapping[int, str]) -> bytes:
    """A horizontal stacked bar per stage (Stage 1 on top), its parts the open cases by age band,
    each part labelled with its count where the count fits; an x axis of whole numbers below and
    the bands' legend above."""
    from PIL import Image, ImageDraw

    stages = sorted(counts)
    height = int((1.3 + 0.3 * max(len(stages), 1)) * DPI)
    img = Image.new("RGB", (WIDTH, height), "white")
    draw = ImageDraw.Draw(img)
    label_font, small_font = _font(13), _font(12)

    labels = [stage_names.get(st, f"Stage {st}") for st in stages]
    legend_top, legend_rows = 16, 2 * 18
    plot_left = 16 + max((_text_width(label, label_font) for label in labels), default=0) + 14
    plot_right = WIDTH - 18
    plot_top = legend_top + legend_rows + 10
    plot_bottom = height - 52
    totals = [sum(counts[st][i] for i in range(len(bands))) for st in stages]
    top = max(max(totals, default=0), 1) * 1.05
    step = _tick_step(top)
    scale = (plot_right - plot_left) / top

    # The legend: its title, then a swatch and a name per band, left to right.
    draw.text((plot_left, legend_top), "age since opened", fill=INK, font=small_font)
    x = plot_left
    for i, band in enumerate(bands):
        y = legend_top + 20
        draw.rectangle((x, y + 2, x + 26, y + 11), fill=AGE_COLOURS[i % len(AGE_COLOURS)])
        draw.text((x + 34, y - 1), band, fill=INK, font=small_font)
        x += 34 + _text_width(band, small_font) + 24

    # One row per stage, Stage 1 on top; the bars are 62% of a row.
    row = (plot_bottom - plot_top) / max(len(stages), 1)
    for n, (st, label) in enumerate(zip(stages, labels, strict=True)):
        mid = plot_top + row * (n + 0.5)
        draw.text((plot_left - 10, mid), label, fill=INK, font=label_font, anchor="rm")
        draw.line((plot_left - 5, mid, plot_left, mid), fill=INK)
        left = 0
        for i in range(len(bands)):
            count = counts[st][i]
            if not count:
                continue
            x0, x1 = plot_left + left * scale, plot_left + (left + count) * scale
            draw.rectangle((round(x0), round(mid - row * 0.31), max(round(x1) - 1, round(x0)), round(mid + row * 0.31)),
                           fill=AGE_COLOURS[i % len(AGE_COLOURS)])
            text = f"{count:,}"
            if _text_width(text, small_font) + 4 <= x1 - x0:
                draw.text(((x0 + x1) / 2, mid), text, font=small_font, anchor="mm",
                          fill="white" if i >= 1 else "#08306b")
            left += count

    # The axes: left and bottom only, whole-number ticks, and what the x axis counts.
    draw.line((plot_left, plot_top, plot_left, plot_bottom), fill=INK)
    draw.line((plot_left, plot_bottom, plot_right, plot_bottom), fill=INK)
    tick = 0
    while tick <= top:
        x = round(plot_left + tick * scale)
        draw.line((x, plot_bottom, x, plot_bottom + 5), fill=INK)
        draw.text((x, plot_bottom + 8), f"{tick:,}", fill=INK, font=small_font, anchor="mt")
        tick += step
    draw.text(((plot_left + plot_right) / 2, height - 8), "open cases", fill=INK, font=label_font, anchor="md")

    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _tick_step(top: float, most: int = 8) -> int:
    """A whole-number step of 1, 2, 2.5 or 5 times a power of ten giving at most `most` ticks."""
    raw = top / most
    power = 10 ** max(math.floor(math.log10(raw)), 0) if raw > 0 else 1
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * power
        if step >= raw and float(step).is_integer():
            return int(step)
    return 10 * power


@cache
def _font(size: int) -> FreeTypeFont | ImageFont:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)   # Pillow's bundled scalable font (FreeType)


def _text_width(text: str, font: FreeTypeFont | ImageFont) -> float:
    left, _, right, _ = font.getbbox(text)
    return right - left
