"""The console's plumbing: the app factory, the per-request `Visit` (who, their session, the
form), and the one wrapper every page goes through: session, CSRF, sign-in and role checks.

Pages and actions are plain functions `(Visit) -> Response` run in a worker thread (the database
calls are synchronous); nothing in the console runs JavaScript."""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute

from mailflow.app import App
from mailflow.clock import Clock
from mailflow.core.humanize import long_instant, short_day
from mailflow.resources import bundled_dir
from mailflow.web import csrf
from mailflow.web.accounts import SignedIn, load_signed_in
from mailflow.web.headers import SecurityHeaders
from mailflow.web.sessions import SessionCodec, SessionState
from mailflow.web.settings import WebSettings, role_at_least

# The Host names a console on loopback answers to when [web] allowed_hosts is not set.
LOOPBACK_NAMES = ("localhost", "127.0.0.1")
MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 40

Handler = Callable[["Visit"], Response]


class Console:
    """What every request needs, built once per server."""

    def __init__(self, app: App, clock: Clock, settings: WebSettings) -> None:
        self.app, self.clock, self.settings = app, clock, settings
        self.sessions = SessionCodec(app.secret_key, settings)
        self.templates = Environment(
            loader=FileSystemLoader(str(template_dir())), autoescape=select_autoescape(default=True),
            undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.templates.filters["when"] = lambda at: long_instant(at) if at else ""
        self.templates.filters["day"] = lambda at: short_day(at) if at else ""
        self.oidc: Any = None   # mailflow.web.oidc.OidcClient when [web.oidc] is configured
        self.dashboard_cache: dict[str, Any] = {}   # partnership -> (minute, Overview): see pages.dashboard
        self.lock = threading.Lock()

    def warm_up(self) -> None:
        """What the first pages would otherwise pay for, done at start: every template compiled,
        each partnership's directory read. No database work."""
        for name in self.templates.list_templates(extensions=["j2"]):
            self.templates.get_template(name)
        for rt in self.app.runtimes():
            _ = rt.directory

    def handle(self, request: Request, form: dict[str, str], role: str | None, handler: Handler) -> Response:
        now = self.clock.now()
        session = self.sessions.load(request, now)
        user: SignedIn | None = None
        if session.user_id is not None:
            with self.app.db.transaction() as s:
                user = load_signed_in(s, session.user_id, session.epoch)
            if user is None:
                session.sign_out("Please sign in again.")
        visit = Visit(self, request, session, user, form)
        response: Response
        if request.method == "POST" and not csrf.valid(session.csrf, form):
            response = visit.refuse(403, "This form has expired or did not come from the console. "
                                         "Go back, reload the page and try again.")
        elif role is not None and user is None:
            if request.method == "GET":
                response = RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
            else:
                response = visit.refuse(403, "Please sign in first.")
        elif role is not None and not role_at_least(user.role if user else None, role):
            response = visit.refuse(403, f"Your role ({user.role if user else 'none'}) does not allow this page.")
        else:
            response = handler(visit)
        self.sessions.save(request, response, session)
        return response


def home_partnership(app: App) -> str:
    """The audit chain that holds the console's own events (sign-in, sign-out, accounts): the
    first partnership's."""
    return app.config.partnerships[0].prefix


def template_dir() -> Path:
    return bundled_dir("templates") / "web"


@dataclass
class Visit:
    """One request as a page sees it."""

    console: Console
    request: Request
    session: SessionState
    user: SignedIn | None
    form: dict[str, str] = field(default_factory=dict)

    @property
    def app(self) -> App:
        return self.console.app

    @property
    def now(self) -> Any:
        return self.console.clock.now()

    def can(self, role: str) -> bool:
        return self.user is not None and role_at_least(self.user.role, role)

    def page(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.console.templates.get_template(template).render(
            user=self.user, csrf_field=csrf.FIELD, csrf_token=self.session.csrf,
            notice=self.session.take_notice(), path=self.request.url.path, can=self.can,
            oidc_label=self.console.settings.oidc.label if self.console.settings.oidc else None,
            **context)
        return HTMLResponse(html, status_code=status)

    def refuse(self, status: int, message: str) -> HTMLResponse:
        return self.page("refused.html.j2", status=status, status_code=status, message=message)

    def redirect(self, to: str, notice: str | None = None) -> RedirectResponse:
        if notice:
            self.session.notice, self.session.changed = notice, True
        return RedirectResponse(to, status_code=303)


def route(role: str | None) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """A page or action: `role` None for the sign-in pages, else the least role that may use it."""
    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            console: Console = request.app.state.console
            form: dict[str, str] = {}
            if request.method == "POST":
                parsed = await read_form(request)
                if parsed is None:
                    return HTMLResponse("The form is too large.", status_code=413)
                form = parsed
            started = time.perf_counter()
            response = await run_in_threadpool(console.handle, request, form, role, handler)
            # The server's own time for the page (the benchmark reads it; browsers show it).
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
            return response
        endpoint.__name__ = handler.__name__
        return endpoint
    return wrap


async def read_form(request: Request) -> dict[str, str] | None:
    """A URL-encoded form, bounded in size and fields (the console's forms carry no files);
    the first value of each name. None when it is too large."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return {}
    try:
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True,
                          max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        return None
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


def create_app(app: App, clock: Clock, settings: WebSettings | None = None,
               wall_clock: Clock | None = None) -> Starlette:
    """The web console over an opened mailflow App. `clock` is the business clock (deadlines,
    sessions, the audit trail); `wall_clock` checks the OpenID provider's token lifetimes."""
    from mailflow.web import actions, auth, pages, quarantine, reports

    console = Console(app, clock, settings or WebSettings())
    if console.settings.oidc is not None:
        from mailflow.web.oidc import OidcClient

        console.oidc = OidcClient(console.settings.oidc, app.secret_key, wall_clock)
    routes: list[BaseRoute] = [*auth.routes(), *pages.routes(), *actions.routes(), *quarantine.routes(),
                               *reports.routes()]
    web = Starlette(routes=routes, middleware=[
        Middleware(TrustedHostMiddleware, allowed_hosts=list(console.settings.allowed_hosts or LOOPBACK_NAMES),
                   www_redirect=False),
        Middleware(SecurityHeaders)])
    web.state.console = console
    threading.Thread(target=console.warm_up, name="mailflow-web-warm-up", daemon=True).start()
    return web
