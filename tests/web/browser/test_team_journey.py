"""A business-team officer in a real browser: signs in with a local account, finds a case on the
list by its filters and its reference, reads why its Stage 2 date is what it is (the rule and the
bank holiday skipped), resolves it with the form and sees the audit entry on the page."""

from __future__ import annotations

from sqlalchemy import select

from mailflow.db.models import Case, Deadline
from tests.web.browser.conftest import TEAM, Page, World


def _listed(page: Page) -> list[str]:
    return [a.text for a in page.els("table tbody th[scope=row] a")]


def _stage2_deadline(world: World, reference: str) -> Deadline:
    with world.console.app.db.transaction() as s:
        row = s.scalars(select(Deadline).join(Case).where(
            Case.reference == reference, Deadline.stage == 2, Deadline.action == "escalate")).one()
        s.expunge(row)
        return row


def test_sign_in_find_a_case_read_its_stage_2_date_resolve_it_and_see_the_audit_entry(
        page: Page, world: World) -> None:
    ref = world.stage2
    # Signing in: the console sends an anonymous visitor to the sign-in page, then back.
    page.sign_in(TEAM, start="/")
    assert page.path == "/" and page.el("h1").text == "Dashboard"
    assert "Jo Officer (team)" in page.el("header").text

    # Finding the case: the list's filters, then its reference.
    page.el("nav a[href='/cases']").click()
    assert page.el("h1").text == "Cases"
    page.el("#f-state option[value=open]").click()
    page.fill("#f-stage", "2")
    page.submit(page.el("form.filters button[type=submit]"))
    at_stage_2 = sorted(r for r in world.references
                        if world.harness.case(r)["stage"] == 2 and world.harness.case(r)["state"] == "open")
    assert ref in at_stage_2 and len(at_stage_2) < len(world.references)
    assert sorted(_listed(page)) == at_stage_2
    assert "state=open" in page.path and "stage=2" in page.path
    page.el("a[href='/cases']").click()    # Clear
    page.fill("#f-reference", ref.rsplit("-", 1)[1])
    page.submit(page.el("form.filters button[type=submit]"))
    assert _listed(page) == [ref]
    page.el(f"a[href='/cases/{ref}']").click()
    assert page.path == f"/cases/{ref}" and page.el("h1").text == ref

    # Why Stage 2 is due when it is: 5 working days from Wed 30 Dec 2026, New Year's Day skipped.
    deadline = _stage2_deadline(world, ref)
    row = page.row_containing("#deadlines + table", "resolve (escalate)", "pending")
    cells = [td.text for td in row.find_elements("tag name", "td")]
    assert cells[0] == "2"
    assert cells[2] == "Thursday 7 January 2027, 5pm"
    assert cells[4] == deadline.rule and "5 working days of Stage 2" in cells[4]
    assert cells[5] == "2027-01-01 (New Year's Day)"
    history = page.row_containing("#history + table", "Stage 2")
    assert "escalated from Stage 1 automatically" in history.text

    # Resolving it with the form on the page.
    outcome = "Joint visit agreed; the discharge plan is revised."
    page.fill("#resolve-text", outcome)
    page.submit(page.el(f"form[action='/cases/{ref}/resolve'] button[type=submit]"))
    assert page.path == f"/cases/{ref}"
    assert f"{ref}: resolve recorded; the case is resolved" in page.el(".notice[role=status]").text
    assert world.harness.case(ref)["state"] == "resolved"

    # The audit entry, on the page and in the database, names the person who signed in.
    entry = page.row_containing("#audit + table", "resolved")
    assert f"web:Jo Officer <{TEAM}>" in entry.text
    viewed = page.row_containing("#audit + table", "viewed")
    assert f"web:Jo Officer <{TEAM}>" in viewed.text and "web console: case page" in viewed.text
    assert [e.actor for e in world.harness.events(ref, "resolved")] == [f"web:Jo Officer <{TEAM}>"]
    assert world.harness.outbox(ref, kind="confirmation_request"), "resolving asks for written confirmation"
