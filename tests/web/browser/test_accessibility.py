"""Accessibility, checked by an automated checker: axe-core (bundled by selenium-axe-python) run in
the browser on the sign-in page, the dashboard, the case list and a case page with its forms. No
serious or critical violation is allowed; the page's own stylesheet must have loaded (contrast is
judged on what the person sees) and nothing may be refused by the Content-Security-Policy."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.browser.conftest import TEAM, Page, World

BLOCKING = {"serious", "critical"}


def _axe(page: Page) -> dict[str, Any]:
    from selenium_axe_python import Axe

    axe = Axe(page.d)
    axe.inject()
    results: dict[str, Any] = axe.run()
    return results


def _path(name: str, world: World) -> str:
    return {"sign-in": "/login", "dashboard": "/", "case list": "/cases",
            "case page": f"/cases/{world.fresh[2]}", "policy timeline": "/policy?start=2026-12-21"}[name]


@pytest.mark.parametrize("name", ["sign-in", "dashboard", "case list", "case page", "policy timeline"])
def test_no_serious_or_critical_accessibility_violation(page: Page, world: World, name: str) -> None:
    if name != "sign-in":
        page.sign_in(TEAM)
    page.console_errors()              # the page is loaded afresh and its log read alone
    page.go(_path(name, world))
    assert page.path == _path(name, world)
    assert page.console_errors() == [], "the browser refused or failed to load part of the page"
    header = page.d.execute_script("return getComputedStyle(document.querySelector('header')).backgroundColor")
    assert header == "rgb(11, 12, 12)", "the console's stylesheet did not load"

    results = _axe(page)
    assert results["passes"], "axe ran no check"
    blocking = [v for v in results["violations"] if v.get("impact") in BLOCKING]
    from selenium_axe_python import Axe

    assert not blocking, Axe.report(blocking)
    for v in results["violations"]:    # lesser findings are shown (pytest -s), not failed
        print(f"axe {name}: {v['impact']} {v['id']}: {v['help']} ({len(v['nodes'])} elements)")


def test_the_checker_finds_a_flaw_put_into_a_page(page: Page, world: World) -> None:
    """The control: the same run on the sign-in page with a label taken away and a grey-on-grey
    paragraph put in reports both, so a clean result above means a checked page."""
    page.go("/login")
    page.d.execute_script("""
        document.querySelector("label[for=email]").remove();
        const p = document.createElement("p");
        p.textContent = "Faint text"; p.style.color = "#bbb"; p.style.background = "#ccc";
        document.querySelector("main").append(p);""")
    found = {v["id"]: v["impact"] for v in _axe(page)["violations"]}
    assert found.get("label") == "critical" and found.get("color-contrast") == "serious", found
