"""The web console's settings: where it listens, how long a session lasts, and who may sign in
with OpenID Connect (Microsoft Entra ID). The `[web]` config table fills them in."""

from __future__ import annotations

from dataclasses import dataclass, field

ROLES = ("viewer", "team", "admin")   # each role can do everything the one before it can


def role_at_least(role: str | None, needed: str) -> bool:
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


@dataclass(frozen=True)
class OidcSettings:
    """Sign-in with the partnership's own Microsoft 365 tenant (or any OpenID Connect issuer).

    `issuer` is e.g. https://login.microsoftonline.com/<tenant id>/v2.0; the client secret is read
    from the environment variable `client_secret_env`. Who may sign in, and as what: a member of
    one of `groups` (Entra ID group object ids -> role, from the ID token's `groups` claim) or a
    listed address in `addresses` (address -> role). The highest role that applies wins; nobody
    else signs in."""

    issuer: str
    client_id: str
    client_secret_env: str
    groups: dict[str, str] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)
    redirect_uri: str | None = None     # else the console's own /auth/callback as the request saw it
    scopes: str = "openid profile email"
    label: str = "Sign in with Microsoft 365"


@dataclass(frozen=True)
class WebSettings:
    listen: str = "127.0.0.1:8080"
    session_idle_minutes: int = 30
    # Secure cookies: "auto" marks them Secure unless the console is reached over plain http on a
    # loopback address (the demo and the tests); a console on any other address therefore needs
    # https (directly or through a proxy that sets X-Forwarded-Proto). true / false force it.
    secure_cookies: str = "auto"
    login_failures_per_account: int = 5     # within login_window_minutes, then refused until the window passes
    login_failures_per_client: int = 30     # one office behind one address signs in together
    login_window_minutes: int = 15
    case_page_size: int = 50
    oidc: OidcSettings | None = None
