"""App-only OAuth 2.0 tokens (MSAL client credentials) for IMAP/SMTP XOAUTH2, EWS and Graph.

A `TokenProvider` hands out a bearer token, cached and refreshed `refresh_margin` seconds before
it expires. Failures become `OAuthError` with a sentence a council IT officer can act on.

Config keys (in the mailbox or transport table): `tenant_id`, `client_id`, `client_secret_env`
or `client_secret_file`, optional `authority_host` (default login.microsoftonline.com) and `scope`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from mailflow.connectors import ConnectorEnv
from mailflow.errors import ConfigError, MailflowError

OUTLOOK_SCOPE = "https://outlook.office365.com/.default"   # IMAP, SMTP and EWS in Exchange Online
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


class OAuthError(MailflowError):
    """No token: the message says what to fix in Entra ID (Azure AD)."""


class TokenProvider(Protocol):
    def token(self) -> str: ...

    def invalidate(self) -> None: ...


class StaticTokenProvider:
    """A fixed token: tests and one-off tools."""

    def __init__(self, token: str) -> None:
        self._token = token

    def token(self) -> str:
        return self._token

    def invalidate(self) -> None:
        pass


# AADSTS codes seen when app-only access is misconfigured, with what to do about each.
_AADSTS_HINTS = {
    "AADSTS90002": "the tenant_id does not exist: check the Directory (tenant) ID in Entra ID",
    "AADSTS900023": "the tenant_id is not a valid tenant ID or domain",
    "AADSTS700016": "no application with this client_id in this tenant: check client_id "
                    "and tenant_id (an app registered in another tenant needs admin consent here)",
    "AADSTS7000215": "the client secret is wrong: use the secret's Value, not its ID",
    "AADSTS7000222": "the client secret has expired: create a new one in Certificates & secrets",
    "AADSTS65001": "admin consent has not been granted for the app's permissions: "
                   "an administrator must click 'Grant admin consent'",
    "AADSTS500011": "the resource is not in this tenant: check the scope",
    "AADSTS1002012": "the scope must end in '/.default' for app-only access",
    "AADSTS70011": "the scope is not valid: it must end in '/.default'",
}


def explain_token_error(result: Mapping[str, Any]) -> str:
    """One sentence from an MSAL/Entra error response (never includes the secret)."""
    desc = str(result.get("error_description") or "")
    code = next((c for c in _AADSTS_HINTS if desc.startswith(c + ":") or f" {c}:" in desc), None)
    codes = result.get("error_codes") or []
    if code is None:
        code = next((c for c in _AADSTS_HINTS if int(c[6:]) in codes), None)
    if code is not None:
        return f"{_AADSTS_HINTS[code]} ({code})"
    first_line = desc.splitlines()[0] if desc else ""
    return f"{result.get('error', 'unknown error')}: {first_line}".strip(": ")


class MsalTokenProvider:
    """Client-credentials tokens from MSAL, cached here with an explicit expiry margin."""

    def __init__(self, tenant_id: str, client_id: str, client_secret: str, scope: str,
                 authority_host: str = "https://login.microsoftonline.com",
                 refresh_margin: float = 300.0,
                 monotonic: Callable[[], float] = time.monotonic,
                 app_factory: Callable[..., Any] | None = None) -> None:
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.scope = scope
        self.authority = f"{authority_host.rstrip('/')}/{tenant_id}"
        self._secret = client_secret
        self._margin = refresh_margin
        self._monotonic = monotonic
        self._app_factory = app_factory
        self._app: Any = None
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def _msal_app(self) -> Any:
        if self._app is None:
            factory = self._app_factory
            if factory is None:
                import msal

                factory = msal.ConfidentialClientApplication
            try:
                self._app = factory(self.client_id, client_credential=self._secret,
                                    authority=self.authority)
            except ValueError as exc:  # MSAL validates the authority over the network
                raise OAuthError(f"cannot use tenant {self.tenant_id!r}: {exc}") from None
        return self._app

    def token(self) -> str:
        with self._lock:
            now = self._monotonic()
            if self._token is not None and now < self._expires_at - self._margin:
                return self._token
            try:
                result = self._msal_app().acquire_token_for_client(scopes=[self.scope])
            except OAuthError:
                raise
            except Exception as exc:  # noqa: BLE001 - network failures reach the user as a line
                raise OAuthError(f"cannot reach the Microsoft sign-in service "
                                 f"({type(exc).__name__}: {exc})") from None
            if not result or "access_token" not in result:
                raise OAuthError(f"Entra ID refused a token for app {self.client_id}: "
                                 f"{explain_token_error(result or {})}")
            self._token = str(result["access_token"])
            self._expires_at = now + float(result.get("expires_in", 3599))
            return self._token

    def invalidate(self) -> None:
        """Forget the cached token (after the server rejected it)."""
        with self._lock:
            self._token = None
            self._expires_at = 0.0


def token_provider_from_config(options: Mapping[str, Any], env: ConnectorEnv,
                               default_scope: str) -> MsalTokenProvider:
    for key in ("tenant_id", "client_id"):
        if not options.get(key):
            raise ConfigError(f"{env.where}: {key}: required when auth = \"xoauth2\" "
                              f"(or for Graph/OAuth EWS)")
    secret = env.secret(options, "client_secret")
    assert secret is not None
    return MsalTokenProvider(
        tenant_id=str(options["tenant_id"]), client_id=str(options["client_id"]),
        client_secret=secret, scope=str(options.get("scope", default_scope)),
        authority_host=str(options.get("authority_host", "https://login.microsoftonline.com")),
    )
