"""Sign-in with OpenID Connect: Microsoft Entra ID (the partnership's own tenant) or any issuer.

The authorisation-code flow with PKCE (S256, authlib's code challenge; the token request is one
httpx POST with the client secret), a state and a nonce kept in a
short-lived signed cookie of their own (SameSite=Lax, path /auth/callback: the session cookie is
SameSite=Strict, which a browser does not send on the redirect back from the provider), the ID
token's signature, issuer, audience, expiry and nonce checked with joserfc against the provider's
published keys. Who may sign in, and as what, comes from `[web.oidc] groups` (the ID token's
`groups` claim: Entra group object ids) and `addresses`; anyone else is refused and the refusal is
on the audit trail. Token lifetimes are checked against the wall clock (the provider's clock),
never the console's business clock, which the demo and the tests move."""

from __future__ import annotations

import os
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from itsdangerous import BadSignature, URLSafeTimedSerializer
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from mailflow.clock import Clock, SystemClock
from mailflow.config import OidcSettings
from mailflow.errors import ConfigError
from mailflow.pipeline.audit import append_event
from mailflow.web.accounts import AccountError, record_oidc_user
from mailflow.web.console import Visit, home_partnership, route
from mailflow.web.sessions import derive_key
from mailflow.web.settings import ROLES

COOKIE = "mailflow_oidc"
FLOW_SECONDS = 600          # a sign-in must come back within ten minutes
METADATA_SECONDS = 3600     # discovery document and keys are fetched again after an hour
HTTP_TIMEOUT = 10.0
LEEWAY = 120                # seconds of clock difference tolerated on iat / exp


class SignInRefused(Exception):
    """The provider's answer does not sign anyone in; the message is for the person."""


@dataclass(frozen=True)
class Identity:
    email: str
    name: str | None
    role: str


class OidcClient:
    def __init__(self, settings: OidcSettings, secret_key: bytes, wall_clock: Clock | None = None) -> None:
        self.settings = settings
        self.wall_clock = wall_clock or SystemClock()
        self._flow = URLSafeTimedSerializer(derive_key(secret_key, "oidc flow"), salt="oidc")
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._fetched = 0.0

    @property
    def client_secret(self) -> str:
        secret = os.environ.get(self.settings.client_secret_env, "")
        if not secret:
            raise ConfigError(f"[web.oidc] client_secret_env: ${self.settings.client_secret_env} is not set")
        return secret


    # -- the provider's published configuration and keys
    def metadata(self, refresh: bool = False) -> dict[str, Any]:
        with self._lock:
            if refresh or self._metadata is None or time.monotonic() - self._fetched > METADATA_SECONDS:
                url = f"{self.settings.issuer}/.well-known/openid-configuration"
                meta = _get_json(url)
                if str(meta.get("issuer", "")).rstrip("/") != self.settings.issuer:
                    raise SignInRefused(f"the provider at {url} names another issuer ({meta.get('issuer')!r})")
                self._metadata, self._keys = meta, KeySet.import_key_set(_get_json(str(meta["jwks_uri"])))  # type: ignore[arg-type]
                self._fetched = time.monotonic()
            return self._metadata

    def keys(self) -> KeySet:
        self.metadata()
        assert self._keys is not None
        return self._keys

    # -- the flow
    def begin(self, redirect_uri: str, next_path: str) -> tuple[str, str]:
        """The provider's authorisation URL and the flow cookie's value."""
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        url = add_params_to_uri(self.metadata()["authorization_endpoint"], [
            ("response_type", "code"), ("client_id", self.settings.client_id), ("redirect_uri", redirect_uri),
            ("scope", self.settings.scopes), ("state", state), ("nonce", nonce),
            ("code_challenge", create_s256_code_challenge(verifier)), ("code_challenge_method", "S256")])
        flow = self._flow.dumps({"s": state, "n": nonce, "v": verifier, "r": redirect_uri, "x": next_path})
        return url, flow

    def finish(self, flow_cookie: str, params: dict[str, str]) -> tuple[Identity, str]:
        """The signed-in identity (and where to go next) from the provider's redirect back."""
        try:
            flow = self._flow.loads(flow_cookie, max_age=FLOW_SECONDS) if flow_cookie else None
        except BadSignature:
            flow = None
        if not isinstance(flow, dict) or not secrets.compare_digest(str(flow.get("s", "")),
                                                                    params.get("state", "") or "-"):
            raise SignInRefused("This sign-in has expired or was not started here. Please sign in again.")
        if params.get("error"):
            said = params.get("error_description") or params["error"]
            raise SignInRefused(f"The sign-in provider said: {said}"[:300])
        code = params.get("code", "")
        if not code:
            raise SignInRefused("The sign-in provider sent no authorisation code.")
        token = self._redeem(code, flow["v"], flow["r"])
        claims = self.verify(str(token.get("id_token", "")), flow["n"])
        return self.identity(claims), str(flow.get("x") or "/")

    def _redeem(self, code: str, verifier: str, redirect_uri: str) -> dict[str, Any]:
        """The code, the PKCE verifier and the client's secret for the tokens."""
        try:
            response = httpx.post(self.metadata()["token_endpoint"], timeout=HTTP_TIMEOUT, data={
                "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "code_verifier": verifier, "client_id": self.settings.client_id,
                "client_secret": self.client_secret})
            token = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SignInRefused(f"The sign-in provider could not be reached ({type(exc).__name__}).") from None
        if response.status_code != 200 or not isinstance(token, dict):
            said = token.get("error_description") or token.get("error") if isinstance(token, dict) else None
            raise SignInRefused(f"The sign-in provider did not accept the code ({said or response.status_code}).")
        return token

    def verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        if not id_token:
            raise SignInRefused("The sign-in provider sent no ID token.")
        now = int(self.wall_clock.now().timestamp())
        try:
            try:
                decoded = jwt.decode(id_token, self.keys(), algorithms=["RS256", "ES256", "PS256"])
            except JoseError:
                decoded = jwt.decode(id_token, self._refreshed_keys(), algorithms=["RS256", "ES256", "PS256"])
            jwt.JWTClaimsRegistry(
                now=now, leeway=LEEWAY,
                iss={"essential": True, "value": self.settings.issuer},
                aud={"essential": True, "value": self.settings.client_id},
                nonce={"essential": True, "value": nonce},
                exp={"essential": True}, sub={"essential": True},
            ).validate(decoded.claims)
        except JoseError as exc:
            raise SignInRefused(f"The ID token could not be trusted ({exc.error}).") from None
        return dict(decoded.claims)

    def _refreshed_keys(self) -> KeySet:
        """The provider rotated its keys: fetch them once more."""
        self.metadata(refresh=True)
        assert self._keys is not None
        return self._keys

    def identity(self, claims: dict[str, Any]) -> Identity:
        """Who signed in and their role: the highest the settings give their groups or address."""
        email = str(claims.get("email") or claims.get("preferred_username") or claims.get("upn") or "").lower()
        if "@" not in email:
            raise SignInRefused("The sign-in provider did not say which email address you signed in with.")
        names = claims.get("_claim_names")
        if isinstance(names, dict) and "groups" in names:
            raise SignInRefused("You are in too many groups for the ID token to list them; ask IT to limit the "
                                "app registration's group claims to the groups assigned to the application.")
        groups = claims.get("groups") or []
        roles = [self.settings.groups[g] for g in groups if isinstance(g, str) and g in self.settings.groups]
        by_address = {a.lower(): r for a, r in self.settings.addresses.items()}
        if email in by_address:
            roles.append(by_address[email])
        if not roles:
            raise SignInRefused(f"{email} is not in a group (or on the list) allowed to use the console.")
        role = max(roles, key=ROLES.index)
        name = claims.get("name")
        return Identity(email=email, name=str(name)[:200] if name else None, role=role)


def _get_json(url: str) -> dict[str, Any]:
    try:
        response = httpx.get(url, timeout=HTTP_TIMEOUT, follow_redirects=False)
        response.raise_for_status()
        data = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise SignInRefused(f"The sign-in provider could not be reached ({type(exc).__name__}).") from None
    if not isinstance(data, dict):
        raise SignInRefused(f"The sign-in provider's {url} is not a JSON object.")
    return data


# ---------------------------------------------------------------------------- the routes

def routes() -> list[BaseRoute]:
    return [
        Route("/auth/oidc", start, methods=["GET"]),
        Route("/auth/callback", callback, methods=["GET"]),
    ]


def _redirect_uri(v: Visit, client: OidcClient) -> str:
    return client.settings.redirect_uri or str(v.request.base_url).rstrip("/") + "/auth/callback"


@route(None)
def start(v: Visit) -> Response:
    from mailflow.web.auth import safe_next

    client: OidcClient | None = v.console.oidc
    if client is None:
        return v.refuse(404, "Sign-in with Microsoft 365 is not set up on this console.")
    try:
        url, flow = client.begin(_redirect_uri(v, client), safe_next(v.request.query_params.get("next")))
    except (SignInRefused, ConfigError) as exc:
        return v.page("login.html.j2", status=503, next="/", email="", error=str(exc))
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(COOKIE, flow, max_age=FLOW_SECONDS, path="/auth/callback", httponly=True,
                        samesite="lax", secure=v.console.sessions.secure(v.request))
    return response


@route(None)
def callback(v: Visit) -> Response:
    client: OidcClient | None = v.console.oidc
    if client is None:
        return v.refuse(404, "Sign-in with Microsoft 365 is not set up on this console.")
    params = {k: v.request.query_params.get(k, "")[:2000] for k in ("code", "state", "error", "error_description")}
    now, partnership = v.now, home_partnership(v.app)
    try:
        identity, target = client.finish(v.request.cookies.get(COOKIE, ""), params)
        with v.app.db.transaction() as s:
            user = record_oidc_user(s, identity.email, identity.name, identity.role, now)
            append_event(s, now, f"web:{user.email}", "signed_in", partnership=partnership, method="oidc",
                         role=user.role)
            uid, epoch = user.id, user.session_epoch
    except (SignInRefused, AccountError, ConfigError) as exc:
        with v.app.db.transaction() as s:
            append_event(s, now, "web:oidc", "sign_in_refused", partnership=partnership, why=str(exc)[:500])
        response: Response = v.page("login.html.j2", status=403, next="/", email="", error=str(exc))
        response.delete_cookie(COOKIE, path="/auth/callback")
        return response
    v.session.sign_in(uid, epoch, now)
    response = continue_page(target)
    response.delete_cookie(COOKIE, path="/auth/callback")
    return response


def continue_page(target: str) -> HTMLResponse:
    """A same-site step after the provider's redirect: the browser sends the SameSite=Strict
    session cookie on a navigation this page starts, not on the provider's redirect chain."""
    href = quote(target, safe="/?=&-_.~%")
    return HTMLResponse(
        '<!DOCTYPE html><html lang="en-GB"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0; url={href}"><title>Signed in</title>'
        '<link rel="stylesheet" href="/static/console.css"></head><body><main id="main">'
        f'<h1>Signed in</h1><p><a href="{href}">Continue to the console</a></p></main></body></html>')

