"""MSAL client-credentials tokens: cached, refreshed before expiry, errors explained."""

from __future__ import annotations

import pytest

from mailflow.connection.oauth import MsalTokenProvider, OAuthError


class FakeApp:
    def __init__(self, results: list[dict]) -> None:
        self.results = results
        self.calls = 0

    def acquire_token_for_client(self, scopes):
        assert scopes == ["https://outlook.office365.com/.default"]
        self.calls += 1
        return self.results.pop(0)


def provider(app: FakeApp, clock: list[float]) -> MsalTokenProvider:
    return MsalTokenProvider("tenant", "client", "secret", "https://outlook.office365.com/.default",
                             refresh_margin=300, monotonic=lambda: clock[0],
                             app_factory=lambda *a, **k: app)


def test_cached_then_refreshed_before_expiry() -> None:
    app = FakeApp([{"access_token": "t1", "expires_in": 3600},
                   {"access_token": "t2", "expires_in": 3600}])
    clock = [0.0]
    p = provider(app, clock)
    assert p.token() == "t1"
    clock[0] = 3299
    assert p.token() == "t1" and app.calls == 1
    clock[0] = 3300                      # within the 5-minute margin: a new token
    assert p.token() == "t2" and app.calls == 2


def test_invalidate_forces_a_new_token() -> None:
    app = FakeApp([{"access_token": "t1", "expires_in": 3600},
                   {"access_token": "t2", "expires_in": 3600}])
    p = provider(app, [0.0])
    assert p.token() == "t1"
    p.invalidate()
    assert p.token() == "t2"


@pytest.mark.parametrize("desc, expected", [
    ("AADSTS700016: Application with identifier 'x' was not found in the directory", "client_id"),
    ("AADSTS7000215: Invalid client secret provided.", "secret's Value"),
    ("AADSTS65001: The user or administrator has not consented", "admin consent"),
    ("AADSTS90002: Tenant 'x' not found.", "tenant_id"),
])
def test_errors_explained(desc, expected) -> None:
    app = FakeApp([{"error": "invalid_client", "error_description": desc}])
    with pytest.raises(OAuthError, match=expected) as info:
        provider(app, [0.0]).token()
    assert "secret" not in str(info.value).split("AADSTS")[0] or expected == "secret's Value"
