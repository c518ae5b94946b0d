"""Signing in and out with a local account (password), and the console's stylesheet.
OpenID Connect sign-in is in oidc.py."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from mailflow.db.models import WebUser
from mailflow.pipeline.audit import append_event
from mailflow.web import throttle
from mailflow.web.accounts import check_password
from mailflow.web.console import Visit, home_partnership, route, template_dir


def routes() -> list[BaseRoute]:
    from mailflow.web import oidc

    return [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/static/console.css", stylesheet, methods=["GET"]),
        *oidc.routes(),
    ]


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this console only."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target or len(target) > 300:
        return "/"
    return target


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@route(None)
def login_page(v: Visit) -> Response:
    if v.user is not None:
        return v.redirect(safe_next(v.request.query_params.get("next")))
    return v.page("login.html.j2", next=safe_next(v.request.query_params.get("next")), error=None, email="")


@route(None)
def login_submit(v: Visit) -> Response:
    settings, now = v.console.settings, v.now
    email, password = v.form.get("email", "").strip()[:320], v.form.get("password", "")
    client = client_address(v.request)
    target = safe_next(v.form.get("next"))
    with v.app.db.transaction() as s:
        if throttle.refused(s, settings, email, client, now):
            return v.page("login.html.j2", status=429, next=target, email=email,
                          error=f"Too many failed sign-ins. Wait {settings.login_window_minutes} minutes "
                                "and try again, or ask an administrator.")
        user = check_password(s, email, password)
        if user is None:
            throttle.record_failure(s, email, client, now)
            failed = True
        else:
            failed = False
            throttle.forget(s, email, settings, now)
            user.last_sign_in_at = now
            append_event(s, now, f"web:{user.email}", "signed_in", partnership=home_partnership(v.app),
                         method="password")
            uid, epoch = user.id, user.session_epoch
    if failed:
        return v.page("login.html.j2", status=401, next=target, email=email,
                      error="That email address and password do not match an account.")
    v.session.sign_in(uid, epoch, now)
    return v.redirect(target)


@route(None)
def logout(v: Visit) -> Response:
    """Sign out: this session ends, and so does every other of the same account (the epoch moves)."""
    if v.user is not None:
        with v.app.db.transaction() as s:
            user = s.get(WebUser, v.user.id)
            if user is not None:
                user.session_epoch += 1
            append_event(s, v.now, v.user.actor, "signed_out", partnership=home_partnership(v.app))
    v.session.sign_out("You have signed out.")
    return v.redirect("/login")


async def stylesheet(request: Request) -> Response:
    return FileResponse(template_dir() / "console.css", media_type="text/css")
