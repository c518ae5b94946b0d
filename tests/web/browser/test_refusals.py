"""What the console refuses, seen from a browser: a form whose CSRF token was taken out, a form sent
after the session's cookie is gone, a page asked for without a session. Each refusal changes nothing;
the same request with the token and the session goes through (so the refusal is the token's doing)."""

from __future__ import annotations

import httpx

from tests.web.browser.conftest import TEAM, Page, World
from tests.web.conftest import PASSWORD, csrf_of


def _notes(world: World, ref: str) -> list[str]:
    return [e.detail.get("text", "") for e in world.harness.events(ref, "note")]


def _cookies(page: Page) -> dict[str, str]:
    return {c["name"]: c["value"] for c in page.d.get_cookies()}


def test_a_form_without_its_csrf_token_is_refused(page: Page, world: World) -> None:
    ref = world.fresh[0]
    page.sign_in(TEAM, start=f"/cases/{ref}")
    assert page.path == f"/cases/{ref}"
    before = world.harness.events(ref)
    # The browser sends the note form with its hidden token removed.
    page.d.execute_script("document.querySelector(\"form[action$='/note'] input[name=csrf_token]\").remove()")
    page.fill("#note-text", "A note sent without the form's token.")
    page.submit(page.el(f"form[action='/cases/{ref}/note'] button[type=submit]"))
    assert "did not come from the console" in page.text
    assert [e.action for e in world.harness.events(ref)] == [e.action for e in before]

    # The same session outside the browser: refused without a token or with a forged one,
    # accepted with the page's own token.
    with httpx.Client(base_url=world.url, cookies=_cookies(page), timeout=30) as c:
        for data in ({"text": "no token"}, {"text": "forged", "csrf_token": "x" * 43}):
            r = c.post(f"/cases/{ref}/note", data=data)
            assert r.status_code == 403, data
        token = csrf_of(c.get(f"/cases/{ref}").text)
        r = c.post(f"/cases/{ref}/note", data={"text": "With the page's token.", "csrf_token": token})
        assert r.status_code == 303
    assert _notes(world, ref) == ["With the page's token."]


def test_without_a_session_forms_are_refused_and_pages_ask_for_a_sign_in(page: Page, world: World) -> None:
    ref = world.fresh[1]
    page.sign_in(TEAM, start=f"/cases/{ref}")
    page.d.delete_all_cookies()     # the session ends (a closed browser, a cleared cookie)
    page.fill("#resolve-text", "Resolved after the session ended.")
    page.submit(page.el(f"form[action='/cases/{ref}/resolve'] button[type=submit]"))
    assert page.el("h1").text == "Not allowed" and "This form has expired" in page.text
    assert world.harness.case(ref)["state"] == "open"

    page.go(f"/cases/{ref}")
    assert page.path == f"/login?next=/cases/{ref}"
    assert "Audit trail" not in page.text and "Ada" not in page.html

    # Without any session outside the browser: a valid anonymous token is still not a sign-in.
    with httpx.Client(base_url=world.url, timeout=30) as c:
        token = csrf_of(c.get("/login").text)
        r = c.post(f"/cases/{ref}/resolve", data={"text": "anonymous", "csrf_token": token})
        assert r.status_code == 403 and "Please sign in first" in r.text
        for path in ("/", "/cases", f"/cases/{ref}", "/policy"):
            r = c.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
    assert world.harness.case(ref)["state"] == "open"

    # Signing in from the page it sent us to brings us back to the case.
    page.fill("#email", TEAM)
    page.fill("#password", PASSWORD)
    page.submit(page.el("form[action='/login'] button[type=submit]"))
    assert page.path == f"/cases/{ref}"
