"""The pages behind the navigation: the case list's filters and keyset pages (the shared
read model), the policy timeline for a start date, and the Board report download."""

from __future__ import annotations

from datetime import timedelta

from tests.engine.conftest import Harness
from tests.web.conftest import Console

VIEWER = "val.viewer@ssp.example.org"


def test_the_case_list_filters_and_pages(console: Console, harness: Harness) -> None:
    refs = [harness.open_case() for _ in range(3)]
    harness.reply(refs[1], "jo.example@gwh.nhs.example.org", "#resolved agreed at the meeting")
    console.add_user(VIEWER, "viewer")
    c = console.sign_in(VIEWER)
    everything = c.get("/cases").text
    assert all(ref in everything for ref in refs)
    resolved = c.get("/cases?state=resolved").text
    assert refs[1] in resolved and refs[0] not in resolved
    assert refs[2] in c.get(f"/cases?reference={refs[2][-4:]}").text
    assert "No cases match" in c.get("/cases?overdue=1").text
    harness.clock.advance(timedelta(days=30))                  # every Stage 1 deadline has passed
    c = console.sign_in(VIEWER)                                # (and the idle session has ended)
    overdue = c.get("/cases?overdue=1&state=open").text
    assert refs[0] in overdue and refs[2] in overdue and refs[1] not in overdue


def test_the_case_list_pages_by_keyset(app, clock) -> None:  # type: ignore[no-untyped-def]
    from mailflow.web.settings import WebSettings
    from tests.web.conftest import make_console

    harness = Harness(app, clock)
    refs = [harness.open_case() for _ in range(3)]
    console = make_console(app, clock, WebSettings(case_page_size=2))
    try:
        console.add_user(VIEWER, "viewer")
        c = console.sign_in(VIEWER)
        one = c.get("/cases").text
        assert refs[0] in one and refs[1] in one and refs[2] not in one and "Next page" in one
        link = one.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
        two = c.get(link).text
        assert refs[2] in two and refs[0] not in two and "Next page" not in two
    finally:
        console.server.stop()


def test_the_policy_page_explains_a_timeline_with_its_holidays(console: Console) -> None:
    console.add_user(VIEWER, "viewer")
    c = console.sign_in(VIEWER)
    page = c.get("/policy?start=2026-12-21").text
    assert "Christmas Day" in page and "Boxing Day" in page and "Stage 1" in page
    assert "is not a date" in c.get("/policy?start=21/12/2026").text


def test_the_board_report_downloads_as_csv_and_xlsx(console: Console, harness: Harness) -> None:
    harness.open_case()
    console.add_user(VIEWER, "viewer")
    c = console.sign_in(VIEWER)
    assert "Board report" in c.get("/reports").text
    r = c.get("/reports/board?from=2026-12-01&to=2026-12-31&format=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="board-report-2026-12-01-2026-12-31.csv"' in r.headers["content-disposition"]
    assert r.text.startswith("section,item,measure,value") and "Ada" not in r.text
    x = c.get("/reports/board?from=2026-12-01&to=2026-12-31&format=xlsx")
    assert x.status_code == 200 and x.content[:2] == b"PK"
    assert c.get("/reports/board?from=2026-12-31&to=2026-12-01").status_code == 400


def test_the_dashboard_mirrors_the_digest_and_follows_actions(console: Console, harness: Harness) -> None:
    ref = harness.open_case()
    console.add_user("jo.officer@ssp.example.org", "team")
    c = console.sign_in("jo.officer@ssp.example.org")
    home = c.get("/").text
    assert "Open cases by stage" in home and f'href="/cases/{ref}"' in home      # new since the last digest
    assert '<svg class="chart"' in home and "Stage 1, under 1 week: 1" in home   # the digest's chart
    assert "Ada" not in home
    console.post(c, f"/cases/{ref}/resolve", {"text": "agreed"}, f"/cases/{ref}")
    after = c.get("/").text
    assert "Awaiting written confirmation (1)" in after                          # not the minute-old figures
    harness.clock.advance(timedelta(days=20))
    c = console.sign_in("jo.officer@ssp.example.org")
    later = c.get("/").text
    assert "Overdue (1)" in later and "working day" in later                     # the confirmation is overdue


def test_the_dashboard_links_each_agency_to_its_cases_but_not_the_unidentified(
        console: Console, harness: Harness) -> None:
    harness.open_case(other_agency="An Agency Nobody Knows")    # not in the directory: not identified
    console.add_user("jo.officer@ssp.example.org", "team")
    home = console.sign_in("jo.officer@ssp.example.org").get("/").text
    assert '<a href="/cases?agency=Great%20Western%20Hospitals%20NHS%20Foundation%20Trust">' in home
    assert "<td>(agency not identified)</td><td>0</td><td>1</td>" in home
    assert "agency=%28agency" not in home


def test_the_dashboard_figures_are_at_most_a_minute_or_two_old(console: Console, harness: Harness) -> None:
    first = harness.open_case()
    console.add_user(VIEWER, "viewer")
    c = console.sign_in(VIEWER)
    assert "New since the last digest (1)" in c.get("/").text
    second = harness.open_case()                       # mail arriving: no action on the console
    assert "New since the last digest (1)" in c.get("/").text       # the same minute: the same figures
    harness.clock.advance(timedelta(seconds=70))
    assert "New since the last digest (1)" in c.get("/").text       # served while worked out again
    harness.clock.advance(timedelta(minutes=5))
    page = c.get("/").text
    assert "New since the last digest (2)" in page and second in page and first in page
