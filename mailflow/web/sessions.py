"""Sessions: one signed cookie (itsdangerous, keyed from mailflow's secret) holding the user's id,
their account's session epoch, the CSRF token and when they were last seen. HttpOnly,
SameSite=Strict, Secure (see WebSettings.secure_cookies), idle timeout by the console's clock.

Nothing personal is in the cookie; the role is read from the database on every request, and the
epoch lets sign-out, a new password or a new role end every older session."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from starlette.requests import Request
from starlette.responses import Response

from mailflow.web.settings import WebSettings

COOKIE = "mailflow_console"
SECURE_COOKIE = "__Host-mailflow_console"   # the __Host- prefix: Secure, path /, no Domain
MAX_COOKIE = 4096
TOUCH_EVERY = timedelta(seconds=60)          # "last seen" moves at most once a minute


def derive_key(secret_key: bytes, purpose: str) -> bytes:
    """A key for one use of the console, from mailflow's secret (never the secret itself)."""
    return hmac.new(secret_key, f"mailflow web {purpose}".encode(), hashlib.sha256).digest()


@dataclass
class SessionState:
    csrf: str
    user_id: int | None = None
    epoch: int = 0
    seen: float = 0.0            # POSIX seconds by the console's clock
    notice: str | None = None    # one message for the next page ("signed out", "timed out")
    changed: bool = field(default=False, repr=False)

    def sign_in(self, user_id: int, epoch: int, now: datetime) -> None:
        self.user_id, self.epoch, self.seen = user_id, epoch, now.timestamp()
        self.csrf = new_token()        # a new token at every change of identity
        self.changed = True

    def sign_out(self, notice: str | None = None) -> None:
        self.user_id, self.epoch, self.seen = None, 0, 0.0
        self.csrf, self.notice = new_token(), notice
        self.changed = True

    def take_notice(self) -> str | None:
        notice, self.notice = self.notice, None
        if notice:
            self.changed = True
        return notice


def new_token() -> str:
    return secrets.token_urlsafe(32)


class SessionCodec:
    def __init__(self, secret_key: bytes, settings: WebSettings) -> None:
        self._serializer = URLSafeSerializer(derive_key(secret_key, "session"), salt="session")
        self.settings = settings
        self.idle = timedelta(minutes=settings.session_idle_minutes)

    def load(self, request: Request, now: datetime) -> SessionState:
        raw = request.cookies.get(self.cookie_name(request), "")
        data: Any = None
        if raw and len(raw) <= MAX_COOKIE:
            try:
                data = self._serializer.loads(raw)
            except BadSignature:
                data = None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return SessionState(csrf=new_token(), changed=True)
        state = SessionState(csrf=data["c"], notice=data.get("n") if isinstance(data.get("n"), str) else None)
        uid, epoch, seen = data.get("u"), data.get("e"), data.get("t")
        if isinstance(uid, int) and isinstance(epoch, int) and isinstance(seen, (int, float)):
            if now.timestamp() - seen > self.idle.total_seconds():
                state.sign_out("Your session ended after "
                               f"{self.settings.session_idle_minutes} minutes without activity. Please sign in again.")
            else:
                state.user_id, state.epoch, state.seen = uid, epoch, float(seen)
                if now.timestamp() - seen >= TOUCH_EVERY.total_seconds():
                    state.seen, state.changed = now.timestamp(), True
        return state

    def save(self, request: Request, response: Response, state: SessionState) -> None:
        if not state.changed:
            return
        data: dict[str, Any] = {"c": state.csrf}
        if state.user_id is not None:
            data.update(u=state.user_id, e=state.epoch, t=int(state.seen))
        if state.notice:
            data["n"] = state.notice[:300]
        response.set_cookie(self.cookie_name(request), self._serializer.dumps(data), path="/",
                            httponly=True, samesite="strict", secure=self.secure(request))

    def secure(self, request: Request) -> bool:
        choice = self.settings.secure_cookies
        if choice in ("true", "false"):
            return choice == "true"
        return request.url.scheme == "https" or not is_loopback(request.url.hostname or "")

    def cookie_name(self, request: Request) -> str:
        return SECURE_COOKIE if self.secure(request) else COOKIE


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
