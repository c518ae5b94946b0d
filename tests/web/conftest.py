"""The console under test: a real uvicorn server on loopback over a real database (SQLite and
PostgreSQL), a frozen clock, and httpx clients that sign in as a person would."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from mailflow.app import App
from mailflow.clock import FixedClock
from mailflow.web import create_app
from mailflow.web.accounts import add_local_user
from mailflow.web.server import RunningServer, start_in_thread
from mailflow.web.settings import WebSettings
from tests.engine.conftest import Harness

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


@dataclass
class Console:
    app: App
    clock: FixedClock
    server: RunningServer
    settings: WebSettings
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def client(self) -> httpx.Client:
        c = httpx.Client(base_url=self.url, follow_redirects=False, timeout=30)
        self.clients.append(c)
        return c

    def add_user(self, email: str, role: str, password: str = PASSWORD, name: str | None = None) -> None:
        with self.app.db.transaction() as s:
            add_local_user(s, email, role, password, self.clock.now(), name=name)

    def sign_in(self, email: str, password: str = PASSWORD, client: httpx.Client | None = None) -> httpx.Client:
        c = client or self.client()
        page = c.get("/login")
        r = c.post("/login", data={"email": email, "password": password, "csrf_token": csrf_of(page.text),
                                   "next": "/"})
        assert r.status_code == 303, r.text
        return c

    def post(self, c: httpx.Client, path: str, data: dict[str, Any], page: str | None = None) -> httpx.Response:
        """A form POST as the browser sends it: with the CSRF token of the page it came from."""
        token = csrf_of(c.get(page or "/").text)
        return c.post(path, data={**data, "csrf_token": token})


def make_console(app: App, clock: FixedClock, settings: WebSettings | None = None) -> Console:
    settings = settings or WebSettings()
    server = start_in_thread(create_app(app, clock, settings))
    return Console(app, clock, server, settings)


@pytest.fixture
def harness(app: App, clock: FixedClock) -> Harness:
    return Harness(app, clock)


@pytest.fixture
def console(app: App, clock: FixedClock) -> Iterator[Console]:
    c = make_console(app, clock)
    yield c
    for client in c.clients:
        client.close()
    c.server.stop()
