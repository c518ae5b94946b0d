"""A `viewer` sees references, stages and dates, and no personal data: the browser follows every
link a viewer is shown, from the dashboard on, and no page holds the invented adult's name, date
of birth or address, the disagreement, or the professionals' addresses."""

from __future__ import annotations

from urllib.parse import urldefrag, urljoin, urlsplit

from tests.web.browser.conftest import ADULT_DOB, ADULT_NAME, VIEWER, Page, World

MAX_PAGES = 150
PERSONAL = (ADULT_NAME, "Testperson", *ADULT_DOB, "Example Road", "SN1 0XX", "discharge care package",
            "Jo Example", "@gwh.nhs.example.org", "@asc.swindon.example.org")


def _links(page: Page, origin: str) -> list[str]:
    found = []
    for a in page.els("a[href]"):
        href = urldefrag(urljoin(page.d.current_url, a.get_attribute("href")))[0]
        if href.startswith(origin + "/"):
            found.append(href[len(origin):])
    return found


def test_a_viewer_sees_no_personal_data_on_any_page_they_can_open(page: Page, world: World) -> None:
    page.sign_in(VIEWER, start="/")
    assert "Val Viewer (viewer)" in page.el("header").text
    origin = f"{urlsplit(world.url).scheme}://{urlsplit(world.url).netloc}"
    to_visit, seen = ["/", "/policy?start=2026-12-21", "/policy?start=2026-12-21&urgent=1"], set()
    while to_visit:
        path = to_visit.pop(0)
        if path in seen:
            continue
        seen.add(path)
        assert len(seen) <= MAX_PAGES, "the crawl did not end"
        page.go(path)
        html = page.html
        for personal in PERSONAL:
            assert personal not in html, f"{personal!r} shown to a viewer on {path}"
        assert "Audit trail" not in html and "Act on the case" not in html, path
        to_visit += [p for p in _links(page, origin) if p not in seen]

    case_pages = {p for p in seen if p.startswith("/cases/")}
    assert case_pages == {f"/cases/{r}" for r in world.references}, "every case was reachable from the dashboard"
    assert {"/", "/cases", "/policy"} <= seen and any(p.startswith("/cases?") for p in seen)
    assert "/directory" not in seen and "/quarantine" not in seen    # an admin's pages are not offered
    page.go(f"/cases/{world.stage2}")
    assert "Deadlines" in page.text and world.stage2 in page.text    # what a viewer does see
    page.go("/directory")
    assert page.el("h1").text == "Not allowed"
    assert all(VIEWER not in e.actor for r in world.references for e in world.harness.events(r, "viewed"))
