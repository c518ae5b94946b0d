"""The status endpoint of `mailflow run` (`[status] listen`, loopback unless said otherwise):
`/healthz` (JSON, 200 healthy / 503 not: mailflow/health_report.py) and `/metrics` (Prometheus
text format, prometheus_client's WSGI app over mailflow/metrics.py), served by a daemon thread."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

from mailflow.errors import ConfigError
from mailflow.health_report import health_report

if TYPE_CHECKING:
    from mailflow.app import App

log = logging.getLogger(__name__)
StartResponse = Callable[..., Any]


def parse_listen(listen: str) -> tuple[str, int]:
    """"127.0.0.1:9187", "[::1]:9187", "0.0.0.0:9187", or a bare port meaning loopback."""
    host, sep, port = listen.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", listen
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"[status] listen = {listen!r}: expected HOST:PORT, e.g. \"127.0.0.1:9187\"")
    return host, int(port)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("status endpoint: " + format, *args)


class StatusServer:
    def __init__(self, app: App, listen: str, started: datetime) -> None:
        self.app = app
        self.started = started
        host, port = parse_listen(listen)
        server_class = type("_Server6", (_Server,), {"address_family": socket.AF_INET6}) if ":" in host else _Server
        try:
            self.httpd: WSGIServer = make_server(host, port, self.wsgi, server_class=server_class,
                                                 handler_class=_QuietHandler)
        except OSError as exc:
            raise ConfigError(f"[status] listen = {listen!r}: cannot listen there ({exc.strerror})") from None
        self._metrics = make_wsgi_app()
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="status", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> StatusServer:
        self._thread.start()
        host, port = self.address
        log.info("status endpoint on http://%s:%s/healthz and /metrics", host, port)
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)

    def wsgi(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return self._metrics(environ, start_response)  # type: ignore[no-any-return]
        if path == "/healthz":
            report = health_report(self.app, self.started)
            body = json.dumps(report.body, indent=2).encode()
            status = "200 OK" if report.healthy else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json"), ("Cache-Control", "no-store"),
                                    ("Content-Length", str(len(body)))])
            return [body]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: /healthz or /metrics\n"]
