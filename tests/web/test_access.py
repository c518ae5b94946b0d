"""What the console refuses: a form without its CSRF token, a request without a session, a role
below the page's; what a viewer does not see; and the security headers on every response."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import httpx
from sqlalchemy import select

from mailflow.app import App
from mailflow.cli.main import main
from mailflow.clock import FixedClock
from mailflow.db.models import Event
from mailflow.db.store import find_case
from mailflow.pipeline import cases
from mailflow.pipeline.cases import Actor
from mailflow.web.headers import CSP
from mailflow.web.settings import WebSettings
from tests.conftest import write_config
from tests.engine.conftest import Harness
from tests.web.conftest import Console, csrf_of, make_console

TEAM, VIEWER, ADMIN = "jo.officer@ssp.example.org", "val.viewer@ssp.example.org", "ash.admin@ssp.example.org"


def _events(console: Console, action: str) -> list[Event]:
    with console.app.db.transaction() as s:
        rows = s.scalars(select(Event).where(Event.action == action).order_by(Event.id)).all()
        s.expunge_all()
        return list(rows)


def test_a_post_without_a_valid_csrf_token_is_refused(console: Console, harness: Harness) -> None:
    ref = harness.open_case()
    console.add_user(TEAM, "team")
    c = console.client()
    r = c.post("/login", data={"email": TEAM, "password": "whatever it is"})
    assert r.status_code == 403 and "did not come from the console" in r.text
    c = console.sign_in(TEAM)
    for token in (None, "forged-token"):
        data = {"text": "a note"} | ({"csrf_token": token} if token else {})
        assert c.post(f"/cases/{ref}/note", data=data).status_code == 403
    assert _events(console, "note") == []
    other = console.sign_in(TEAM)   # a token from another session is no good either
    foreign = csrf_of(other.get("/").text)
    assert c.post(f"/cases/{ref}/note", data={"text": "x", "csrf_token": foreign}).status_code == 403


def test_without_a_session_pages_redirect_and_actions_are_refused(console: Console, harness: Harness) -> None:
    ref = harness.open_case()
    c = console.client()
    for path in ("/", "/cases", f"/cases/{ref}", "/policy", "/directory", "/quarantine"):
        r = c.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
    token = csrf_of(c.get("/login").text)      # a valid anonymous token, but nobody signed in
    r = c.post(f"/cases/{ref}/resolve", data={"text": "agreed", "csrf_token": token})
    assert r.status_code == 403
    assert harness.case(ref)["state"] == "open"


def test_a_viewer_sees_references_stages_and_dates_but_no_personal_data(console: Console, harness: Harness) -> None:
    ref = harness.open_case()
    with harness.app.db.transaction() as s:       # an extension's reason is free text: it may name someone
        case = find_case(s, ref)
        assert case is not None
        cases.extend(s, harness.rt, case, Actor("cli:test"), harness.clock.now(), 2, "Mrs Testperson's GP is away")
    console.add_user(VIEWER, "viewer")
    c = console.sign_in(VIEWER)
    page = c.get(f"/cases/{ref}")
    assert page.status_code == 200
    assert ref in page.text and "Stage 1" in page.text and "Deadlines" in page.text
    assert "extended by 2 working day(s)" in page.text and "Christmas Day" in page.text
    for personal in ("Ada Testperson", "1951", "Example Road", "jo.example@", "discharge care package",
                     "Audit trail", "priya.examplewood", "Testperson", "GP is away"):
        assert personal not in page.text, personal
    assert _events(console, "viewed") == []          # nothing personal was shown
    listing = c.get("/cases").text + c.get("/").text
    assert ref in listing and "Ada" not in listing
    assert c.get("/directory").status_code == 403
    r = console.post(c, f"/cases/{ref}/note", {"text": "a viewer's note"})
    assert r.status_code == 403


def test_a_team_member_sees_the_case_and_the_view_is_audited(console: Console, harness: Harness) -> None:
    ref = harness.open_case()
    console.add_user(TEAM, "team")
    c = console.sign_in(TEAM)
    page = c.get(f"/cases/{ref}").text
    assert "Ada Testperson" in page and "jo.example@gwh.nhs.example.org" in page and "Audit trail" in page
    viewed = _events(console, "viewed")
    assert [(e.actor, e.detail.get("via")) for e in viewed] == [(f"web:{TEAM}", "web console: case page")]
    assert c.get("/quarantine").status_code == 403 and c.get("/directory").status_code == 403


def test_an_admin_sees_the_directory_and_its_problems(console: Console) -> None:
    console.add_user(ADMIN, "admin")
    page = console.sign_in(ADMIN).get("/directory")
    assert page.status_code == 200 and "Problems" in page.text and "Great Western Hospitals" in page.text


def test_every_response_carries_the_security_headers(console: Console) -> None:
    c = console.client()
    for r in (c.get("/login"), c.get("/cases"), c.get("/static/console.css"), c.get("/no-such-page")):
        assert r.headers["content-security-policy"] == CSP
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"
    assert c.get("/login").headers["cache-control"] == "no-store"
    assert "<script" not in c.get("/login").text


def test_a_request_by_a_host_name_not_allowed_is_refused(console: Console, app: App, clock: FixedClock) -> None:
    # DNS rebinding: a page at evil.example has the browser send requests to the console under
    # evil.example's name. On loopback only the loopback names are answered.
    console.add_user("team@ssp.example.org", "team")
    c = console.sign_in("team@ssp.example.org")
    assert c.get("/", headers={"Host": "evil.example"}).status_code == 400
    assert c.get("/login", headers={"Host": f"evil.example:{console.url.rsplit(':', 1)[1]}"}).status_code == 400
    assert c.get("/", headers={"Host": "localhost"}).status_code == 200
    assert c.get("/").status_code == 200   # 127.0.0.1:port
    # A console behind a proxy answers to the names it is configured for, and only those.
    named = make_console(app, clock, WebSettings(allowed_hosts=("console.ssp.example.org",)))
    try:
        with httpx.Client(base_url=named.url) as other:
            assert other.get("/login", headers={"Host": "console.ssp.example.org"}).status_code == 200
            assert other.get("/login").status_code == 400
    finally:
        named.server.stop()


def test_listening_beyond_loopback_needs_the_allowed_host_names(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["--config", str(cfg), "web", "--listen", "0.0.0.0:8080"])
    assert code == 2 and "allowed_hosts" in err.getvalue()
