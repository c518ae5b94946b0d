"""Serving the console with uvicorn: in the foreground (`mailflow web`, the demo) or on a thread
(the tests). It listens on loopback unless told otherwise."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette

from mailflow.errors import ConfigError


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host or not 0 <= int(port) < 65536:
        raise ConfigError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def _config(web: Starlette, host: str, port: int, sock: socket.socket | None = None) -> uvicorn.Config:
    # proxy_headers: X-Forwarded-Proto/-For are believed from loopback only (uvicorn's default),
    # i.e. from a TLS-terminating proxy on the same machine.
    return uvicorn.Config(web, host=host, port=port, log_level="warning", access_log=False,
                          proxy_headers=True, server_header=False, date_header=False,
                          timeout_graceful_shutdown=5)


def serve(web: Starlette, listen: str) -> None:
    """Serve until interrupted (Ctrl-C)."""
    host, port = parse_listen(listen)
    uvicorn.Server(_config(web, host, port)).run()


@dataclass
class RunningServer:
    server: uvicorn.Server
    thread: threading.Thread
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def start_in_thread(web: Starlette, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """A real uvicorn server on a thread; returns once it accepts connections."""
    port = port or free_port(host)
    server = uvicorn.Server(_config(web, host, port))
    thread = threading.Thread(target=server.run, name="mailflow-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the console did not start on {host}:{port}")
        time.sleep(0.01)
    return RunningServer(server, thread, host, port)
