"""OpenID Connect sign-in against a real provider on loopback (oidc-provider-mock, in a thread):
the code flow with PKCE, the ID token checked, the role from the groups claim or the address
list, and a user outside the allowed groups refused."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import oidc_provider_mock
import pytest
from sqlalchemy import select

from mailflow.app import App
from mailflow.clock import FixedClock
from mailflow.config import OidcSettings, WebSettings
from mailflow.db.models import Event, WebUser
from tests.web.conftest import Console, make_console

# The provider (not mailflow) still uses authlib's older interfaces.
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning:authlib.*"),
              pytest.mark.filterwarnings("ignore:authlib.jose module is deprecated")]

TEAM_GROUP, OTHER_GROUP = "6f1c0000-0000-4000-8000-00000000a11c", "6f1c0000-0000-4000-8000-0000000b0b00"
USERS = [
    oidc_provider_mock.User(sub="alice", claims={"email": "alice.officer@ssp.example.org", "name": "Alice Officer",
                                                 "groups": [OTHER_GROUP, TEAM_GROUP]}),
    oidc_provider_mock.User(sub="mallory", claims={"email": "mallory@elsewhere.example.org", "name": "Mallory",
                                                   "groups": [OTHER_GROUP]}),
    oidc_provider_mock.User(sub="chair", claims={"email": "Chair@SSP.example.org", "name": "The Chair"}),
]


@pytest.fixture
def provider() -> Iterator[str]:
    with oidc_provider_mock.run_server_in_thread(user_claims=USERS, require_nonce=True) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture
def oidc_console(app: App, clock: FixedClock, provider: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Console]:
    monkeypatch.setenv("MAILFLOW_TEST_OIDC_SECRET", "not-a-real-secret")
    settings = WebSettings(oidc=OidcSettings(
        issuer=provider, client_id="mailflow-console", client_secret_env="MAILFLOW_TEST_OIDC_SECRET",
        groups={TEAM_GROUP: "team"}, addresses={"chair@ssp.example.org": "viewer"}))
    console = make_console(app, clock, settings)
    yield console
    for c in console.clients:
        c.close()
    console.server.stop()


def _sign_in_at_provider(console: Console, sub: str, next_path: str = "/cases") -> tuple[httpx.Client, httpx.Response]:
    """The browser's trip: the console sends it to the provider, the person picks `sub`, the
    provider sends it back to the console's callback."""
    c = console.client()
    r = c.get(f"/auth/oidc?next={next_path}")
    assert r.status_code == 303
    authorize = r.headers["location"]
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
    with httpx.Client(follow_redirects=False) as browser_at_provider:
        answer = browser_at_provider.post(authorize, data={"sub": sub})
    assert answer.status_code in (302, 303), answer.text
    back = answer.headers["location"]
    assert back.startswith(console.url + "/auth/callback?")
    return c, c.get(back.removeprefix(console.url))


def _events(console: Console, action: str) -> list[Event]:
    with console.app.db.transaction() as s:
        rows = list(s.scalars(select(Event).where(Event.action == action).order_by(Event.id)))
        s.expunge_all()
        return rows


def test_a_member_of_the_allowed_group_signs_in_with_its_role(oidc_console: Console) -> None:
    c, r = _sign_in_at_provider(oidc_console, "alice")
    assert r.status_code == 200 and 'http-equiv="refresh" content="0; url=/cases"' in r.text
    page = c.get("/cases")
    assert page.status_code == 200 and "Alice Officer (team)" in page.text
    with oidc_console.app.db.transaction() as s:
        user = s.scalars(select(WebUser).where(WebUser.email == "alice.officer@ssp.example.org")).one()
        assert (user.kind, user.role, user.password_hash) == ("oidc", "team", None)
    assert [(e.actor, e.detail["method"]) for e in _events(oidc_console, "signed_in")] == \
        [("web:alice.officer@ssp.example.org", "oidc")]


def test_a_listed_address_signs_in_with_the_listed_role(oidc_console: Console) -> None:
    c, r = _sign_in_at_provider(oidc_console, "chair", "/")
    assert r.status_code == 200
    assert "The Chair (viewer)" in c.get("/").text


def test_a_user_outside_the_allowed_groups_is_refused(oidc_console: Console) -> None:
    c, r = _sign_in_at_provider(oidc_console, "mallory")
    assert r.status_code == 403 and "not in a group" in r.text
    assert c.get("/cases").status_code == 303            # no session
    [refused] = _events(oidc_console, "sign_in_refused")
    assert "mallory@elsewhere.example.org" in refused.detail["why"]
    with oidc_console.app.db.transaction() as s:
        assert s.scalars(select(WebUser)).all() == []


def test_a_callback_that_was_not_started_here_is_refused(oidc_console: Console, provider: str) -> None:
    c = oidc_console.client()
    r = c.get("/auth/oidc?next=/")
    authorize = r.headers["location"]
    with httpx.Client(follow_redirects=False) as browser_at_provider:
        back = browser_at_provider.post(authorize, data={"sub": "alice"}).headers["location"]
    stranger = oidc_console.client()                     # the code arrives in another browser: no flow cookie
    r = stranger.get(back.removeprefix(oidc_console.url))
    assert r.status_code == 403 and "not started here" in r.text
    forged = back.replace("state=", "state=x")
    r = c.get(forged.removeprefix(oidc_console.url))
    assert r.status_code == 403
    assert stranger.get("/").status_code == 303 and c.get("/").status_code == 303
