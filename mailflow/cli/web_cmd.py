"""`mailflow web [--listen HOST:PORT]`: the business team's web console (see mailflow/web/)."""

from __future__ import annotations

import argparse

from mailflow.cli.context import CliContext
from mailflow.errors import ConfigError


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    try:
        from mailflow.web import create_app
        from mailflow.web.server import parse_listen, serve
        from mailflow.web.sessions import is_loopback
    except ImportError as exc:
        raise ConfigError(f"the web console needs the [web] extra (pip install 'mailflow[web]'): {exc}") from None
    settings = ctx.config.web
    listen = args.listen or settings.listen
    host, port = parse_listen(listen)
    if not is_loopback(host) and not settings.allowed_hosts:
        raise ConfigError(f"--listen {listen}: not a loopback address, so [web] allowed_hosts must name the "
                          "host names people reach the console by (e.g. [\"console.ssp.example.org\"])")
    web = create_app(ctx.app, ctx.clock, settings)
    print(f"mailflow console on http://{host}:{port}/ (Ctrl-C stops it)", flush=True)
    if not is_loopback(host) and settings.secure_cookies != "false":
        print("  not a loopback address: sessions need https (a TLS proxy in front of it)", flush=True)
    serve(web, listen)
    return 0
