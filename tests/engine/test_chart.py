"""The digest's chart (mailflow/charts.py): a PNG whose bars are as long as their counts."""

from __future__ import annotations

import io

from PIL import Image

from mailflow.charts import AGE_COLOURS, open_cases_by_stage_and_age

BANDS = ("under 1 week", "1-2 weeks", "2-4 weeks", "over 4 weeks")


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16)


def _runs(img: Image.Image, y: int) -> dict[tuple[int, int, int], int]:
    """Pixels of each bar colour along row y."""
    out: dict[tuple[int, int, int], int] = {}
    for x in range(img.width):
        px = img.getpixel((x, y))
        for colour in AGE_COLOURS:
            if px == _rgb(colour):
                out[px] = out.get(px, 0) + 1
    return out


def test_a_bar_per_stage_its_parts_in_proportion_to_the_counts() -> None:
    png = open_cases_by_stage_and_age({1: [100, 0, 300, 0], 2: [50, 50, 50, 250]}, BANDS,
                                      {1: "Stage 1", 2: "Stage 2"})
    img = Image.open(io.BytesIO(png)).convert("RGB")
    assert png.startswith(b"\x89PNG") and img.size == (792, int((1.3 + 0.3 * 2) * 110))
    # Find each stage's bar: the rows (below the legend) where the lightest or darkest colour runs longest.
    rows = [max(range(60, img.height - 40), key=lambda y, c=c: _runs(img, y).get(_rgb(c), 0))
            for c in (AGE_COLOURS[2], AGE_COLOURS[3])]
    stage1, stage2 = (_runs(img, y) for y in rows)
    assert set(stage1) == {_rgb(AGE_COLOURS[0]), _rgb(AGE_COLOURS[2])}   # no part for a band of 0
    assert set(stage2) == {_rgb(c) for c in AGE_COLOURS}
    ratio = stage1[_rgb(AGE_COLOURS[2])] / stage2[_rgb(AGE_COLOURS[3])]   # 300 vs 250 cases
    assert abs(ratio - 300 / 250) < 0.05
    # Stage 1 above Stage 2.
    assert rows[0] < rows[1]


def test_a_single_case_among_many_and_a_lone_stage_still_draw() -> None:
    for counts in ({1: [20_000, 1, 0, 0], 3: [0, 0, 0, 1]}, {1: [1, 0, 0, 0]}):
        png = open_cases_by_stage_and_age(counts, BANDS, {1: "Stage 1"})
        assert Image.open(io.BytesIO(png)).format == "PNG"
