"""The demo's last step: the web console over the demo's database, with a one-time local account,
until Ctrl-C. Its clock carries on from the demo's simulated time at the wall clock's pace."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from mailflow.app import App
from mailflow.clock import Clock
from mailflow.web.accounts import add_local_user, generate_password
from mailflow.web.server import free_port, serve
from mailflow.web.settings import WebSettings

DEMO_ACCOUNT = "demo.admin@ssp.example.org"
PREFERRED_PORT = 8080


class ContinuingClock:
    """Starts at `start` and moves on as real time passes (sessions time out, actions are dated)."""

    def __init__(self, start: datetime) -> None:
        self._start, self._t0 = start, time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._t0)


def serve_console(app: App, clock: Clock, out: Callable[[str], None]) -> None:
    password = generate_password()
    with app.db.transaction() as s:
        add_local_user(s, DEMO_ACCOUNT, "admin", password, clock.now(), name="Demo administrator", replace=True)
    port = PREFERRED_PORT if _free(PREFERRED_PORT) else free_port()
    continuing = ContinuingClock(clock.now())
    from mailflow.web import create_app

    web = create_app(app, continuing, WebSettings())
    out(f"\nThe web console: http://127.0.0.1:{port}/  (loopback only)")
    out(f"   sign in as {DEMO_ACCOUNT} with the one-time password {password}")
    out("   (an admin: every page; `mailflow users add EMAIL --role team` makes more accounts)")
    out("   Ctrl-C stops it; `mailflow demo --no-serve` (or MAILFLOW_DEMO_NO_SERVE=1) skips this step.")
    serve(web, f"127.0.0.1:{port}")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
