"""Screenshots of the dashboard and a case page as the browser draws them, whole pages, written as
PNGs (to $MAILFLOW_SCREENSHOT_DIR when set, to look at; else the test's tmp folder). The layout is
checked where a person would notice: nothing wider than the window, the stylesheet applied, the
labels of the action forms above their fields."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.web.browser.conftest import TEAM, Page, World, screenshot_dir

WIDTHS = (1280, 800)


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def _overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than the window (0: no sideways scrolling)."""
    return int(page.d.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"))


@pytest.mark.parametrize("name", ["dashboard", "case"])
def test_the_page_drawn_whole_and_within_the_window(page: Page, world: World, tmp_path: Path, name: str) -> None:
    path = "/" if name == "dashboard" else f"/cases/{world.fresh[2]}"
    page.sign_in(TEAM)
    try:
        for width in WIDTHS:
            page.d.set_window_size(width, 900)
            page.go(path)
            inner = page.d.execute_script("return window.innerWidth")
            assert _overflow(page) == 0, f"{path} is wider than a {inner}px window"
        page.d.set_window_size(1280, 900)
        page.go(path)
        height = page.d.execute_script("return document.documentElement.scrollHeight")
        client = page.d.execute_script("return document.documentElement.clientWidth")
        png = page.screenshot(screenshot_dir(tmp_path) / f"console-{name}.png")
    finally:
        page.d.set_window_size(1280, 900)
    width, shot_height = _png_size(png)
    assert width == client
    assert shot_height >= height > 900 if name == "case" else shot_height >= height
    if name == "case":
        for field in ("#resolve-text", "#extend-days", "#assign-email"):
            label = page.el(f"label[for={field[1:]}]")
            assert label.rect["y"] + label.rect["height"] <= page.el(field).rect["y"], \
                f"the label of {field} is not above its field"
