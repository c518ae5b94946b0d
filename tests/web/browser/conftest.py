"""The console in a real browser: headless Chromium from the distribution's packages (Debian
`chromium` and `chromium-driver`, installed by .ci/run) driven by Selenium, against a real uvicorn
server on loopback over a database populated through the pipeline with a frozen clock.

Missing Chromium or its driver skips these tests with the reason; under CI it fails them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from mailflow.app import App
from mailflow.clock import FixedClock, parse_instant
from tests.conftest import make_config
from tests.engine.conftest import GWH_MANAGER, RAISER, START, Harness
from tests.web.conftest import PASSWORD, Console, make_console

CHROMIUM = os.environ.get("MAILFLOW_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MAILFLOW_CHROMEDRIVER", "/usr/bin/chromedriver")

TEAM = "jo.officer@ssp.example.org"
VIEWER = "val.viewer@ssp.example.org"
ADMIN = "ash.admin@ssp.example.org"
# The invented adult every form in tests/conftest.py names: what a viewer must never see.
ADULT_NAME = "Ada Testperson"
ADULT_DOB = ("03/04/1951", "1951-04-03", "3 April 1951")
# The console's clock for every page: Thursday 31 December 2026, midday.
NOW = "2026-12-31T12:00:00"


def _missing_browser() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).is_file() and os.access(path, os.X_OK)) and not shutil.which(path):
            return f"{path} not found (apt-get install {package})"
    return None


def need_browser() -> None:
    reason = _missing_browser()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the browser tests")
    pytest.skip(reason)


@dataclass
class World:
    """A populated console: which case is which, and the server showing them."""

    console: Console
    harness: Harness
    stage2: str          # opened 21 Dec, escalated to Stage 2 when Stage 1 ran out over Christmas
    fresh: list[str]     # opened 29-30 Dec, still at Stage 1
    urgent: str          # opened 29 Dec at risk of harm
    incomplete: str      # a form without the disagreement: a draft

    @property
    def url(self) -> str:
        return self.console.url

    @property
    def references(self) -> list[str]:
        return [self.stage2, *self.fresh, self.urgent, self.incomplete]


def populate(harness: Harness) -> dict[str, Any]:
    """Cases made the way mail makes them: forms ingested, deadlines swept as time passes."""
    clock = harness.clock
    stage2 = harness.open_case(RAISER)
    clock.set(parse_instant("2026-12-29T09:30:00"))
    urgent = harness.open_case(RAISER, at_risk=True)
    fresh = [harness.open_case(RAISER, other_agency=agency) for agency in (
        "Swindon Borough Council - Adult Social Care", "Great Western Hospitals NHS Foundation Trust")]
    incomplete = harness.open_case(RAISER, omit=("disagreement_summary",))
    clock.set(parse_instant("2026-12-30T11:00:00"))
    fresh.append(harness.open_case(GWH_MANAGER))
    harness.run_until(NOW)
    return {"stage2": stage2, "fresh": fresh, "urgent": urgent, "incomplete": incomplete}


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    need_browser()
    tmp = tmp_path_factory.mktemp("console")
    clock = FixedClock(parse_instant(START))
    app = App.open(make_config(tmp, f"sqlite:///{tmp / 'mailflow.db'}"), clock)
    harness = Harness(app, clock)
    cases = populate(harness)
    console = make_console(app, clock)
    console.add_user(TEAM, "team", name="Jo Officer")
    console.add_user(VIEWER, "viewer", name="Val Viewer")
    console.add_user(ADMIN, "admin", name="Ash Admin")
    yield World(console, harness, **cases)
    console.server.stop()
    app.close()


@pytest.fixture(scope="session")
def driver(world: World) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--lang=en-GB", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})   # CSP violations land there
    browser = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(30)
    browser.set_script_timeout(60)
    yield browser
    browser.quit()


class Page:
    """One person at the browser: goes to pages, fills in forms, reads what is shown."""

    def __init__(self, driver: Any, world: World) -> None:
        self.d, self.world = driver, world
        # A new person: no cookie from an earlier test (about:blank first: cookies are per origin).
        self.go("/login")
        self.d.delete_all_cookies()

    def go(self, path: str) -> None:
        self.d.get(urljoin(self.world.url, path))

    @property
    def path(self) -> str:
        parts = urlsplit(self.d.current_url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    @property
    def text(self) -> str:
        return str(self.d.find_element("tag name", "body").text)

    @property
    def html(self) -> str:
        return str(self.d.page_source)

    def el(self, css: str) -> Any:
        return self.d.find_element("css selector", css)

    def els(self, css: str) -> list[Any]:
        return list(self.d.find_elements("css selector", css))

    def fill(self, css: str, value: str) -> None:
        field = self.el(css)
        field.clear()
        field.send_keys(value)

    def sign_in(self, email: str, password: str = PASSWORD, start: str = "/") -> None:
        self.go(start)
        assert self.path.startswith("/login"), f"{start} did not ask for a sign-in: {self.path}"
        self.fill("#email", email)
        self.fill("#password", password)
        self.submit(self.el("form[action='/login'] button[type=submit]"))
        assert not self.path.startswith("/login"), self.text

    def submit(self, button: Any) -> None:
        """Press a form's button and wait for the page it leads to. While the old page is torn down,
        chromedriver may answer a look at its element with "unhandled inspector error: Node with given
        id does not belong to the document" rather than "stale element": that is asked again."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.wait import WebDriverWait

        old = self.el("html")
        button.click()
        WebDriverWait(self.d, 30, ignored_exceptions=(WebDriverException,)).until(
            expected_conditions.staleness_of(old))

    def console_errors(self) -> list[str]:
        """What the browser logged as an error since the last call (a refused style or script, a 404)."""
        return [entry["message"] for entry in self.d.get_log("browser") if entry["level"] == "SEVERE"]

    def row_containing(self, table_css: str, *needles: str) -> Any:
        for row in self.els(f"{table_css} tbody tr"):
            if all(n in row.text for n in needles):
                return row
        raise AssertionError(f"no row of {table_css} holds {needles}: {self.text}")

    def screenshot(self, path: Path) -> bytes:
        """The whole page (beyond the window), as a PNG."""
        import base64

        shot = self.d.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        png = base64.b64decode(shot["data"])
        path.write_bytes(png)
        return png


@pytest.fixture
def page(driver: Any, world: World) -> Page:
    return Page(driver, world)


def screenshot_dir(tmp_path: Path) -> Path:
    """Where the screenshots go: $MAILFLOW_SCREENSHOT_DIR when set (to look at them), else the test's tmp."""
    chosen = os.environ.get("MAILFLOW_SCREENSHOT_DIR")
    folder = Path(chosen) if chosen else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder

