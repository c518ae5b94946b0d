"""Local accounts: sign in, wrong passwords, throttling (in the database), idle timeout, sign-out."""

from __future__ import annotations

from datetime import timedelta

from mailflow.web.settings import WebSettings
from tests.web.conftest import PASSWORD, Console, csrf_of, make_console

TEAM = "jo.officer@ssp.example.org"


def test_sign_in_shows_the_dashboard_and_sets_a_strict_http_only_cookie(console: Console) -> None:
    console.add_user(TEAM, "team", name="Jo Officer")
    c = console.client()
    assert c.get("/").headers["location"].startswith("/login")
    page = c.get("/login")
    r = c.post("/login", data={"email": "Jo.Officer@SSP.example.org", "password": PASSWORD,
                               "csrf_token": csrf_of(page.text), "next": "/cases"})
    assert r.status_code == 303 and r.headers["location"] == "/cases"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie          # plain http on loopback only: see WebSettings.secure_cookies
    home = c.get("/")
    assert home.status_code == 200 and "<h1>Dashboard</h1>" in home.text and "Jo Officer (team)" in home.text


def test_a_wrong_password_or_unknown_account_signs_nobody_in(console: Console) -> None:
    console.add_user(TEAM, "team")
    c = console.client()
    for email, password in ((TEAM, "not the password"), ("nobody@ssp.example.org", PASSWORD)):
        r = c.post("/login", data={"email": email, "password": password, "csrf_token": csrf_of(c.get("/login").text)})
        assert r.status_code == 401 and "do not match an account" in r.text
    assert c.get("/").status_code == 303


def test_failed_sign_ins_throttle_the_account_until_the_window_passes(console: Console) -> None:
    console.add_user(TEAM, "team")
    c = console.client()

    def attempt(password: str) -> int:
        return c.post("/login", data={"email": TEAM, "password": password,
                                      "csrf_token": csrf_of(c.get("/login").text)}).status_code

    assert [attempt("wrong guess") for _ in range(5)] == [401] * 5
    assert attempt(PASSWORD) == 429                  # refused without looking at the password
    other = console.client()                          # a second worker or browser agrees: it is in the database
    assert other.post("/login", data={"email": TEAM, "password": PASSWORD,
                                      "csrf_token": csrf_of(other.get("/login").text)}).status_code == 429
    console.clock.advance(timedelta(minutes=16))
    assert attempt(PASSWORD) == 303


def test_failed_sign_ins_from_one_address_throttle_every_account(app, clock) -> None:  # type: ignore[no-untyped-def]
    console = make_console(app, clock, WebSettings(login_failures_per_client=3))
    try:
        console.add_user(TEAM, "team")
        c = console.client()
        for n in range(3):
            c.post("/login", data={"email": f"guess{n}@ssp.example.org", "password": "x" * 12,
                                   "csrf_token": csrf_of(c.get("/login").text)})
        r = c.post("/login", data={"email": TEAM, "password": PASSWORD, "csrf_token": csrf_of(c.get("/login").text)})
        assert r.status_code == 429 and "Too many failed sign-ins" in r.text
    finally:
        console.server.stop()


def test_an_idle_session_ends(console: Console) -> None:
    console.add_user(TEAM, "team")
    c = console.sign_in(TEAM)
    console.clock.advance(timedelta(minutes=20))
    assert c.get("/cases").status_code == 200          # activity keeps it alive
    console.clock.advance(timedelta(minutes=29))
    assert c.get("/cases").status_code == 200
    console.clock.advance(timedelta(minutes=31))
    r = c.get("/cases")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert "without activity" in c.get("/login").text


def test_signing_out_ends_the_session_even_for_a_copied_cookie(console: Console) -> None:
    console.add_user(TEAM, "team")
    c = console.sign_in(TEAM)
    stolen = dict(c.cookies)
    assert console.post(c, "/logout", {}).status_code == 303
    thief = console.client()
    thief.cookies.update(stolen)
    assert thief.get("/cases").status_code == 303
