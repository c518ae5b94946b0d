"""Real IMAP and SMTP servers on 127.0.0.1, for `mailflow demo` (and the tests and benchmark).

Needs the `[demo]` extra (pymap, aiosmtpd): `pip install 'mailflow[demo]'`.

- `start_imap_server(user, password)`: pymap's in-memory backend, in a thread with its own
  asyncio loop. Its data survives `restart()` (listener and connections dropped, mailboxes
  kept), so tests can restart the server mid-IDLE and check nothing is lost.
- `start_smtp_server(...)`: aiosmtpd, recording what it accepts; `inject()` makes the next
  MAIL/RCPT/DATA commands answer a chosen reply (421, 451, 550...).

The TCP proxy and the Dovecot launcher, which only the tests and benchmark use, are in
`tests/servers/`.

Everything listens on loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from imapclient import IMAPClient

HOST = "127.0.0.1"

# aiosmtpd warns when AUTH is offered without TLS: wanted here, on loopback only.
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
warnings.filterwarnings("ignore", message="Session.login_data is deprecated")


def free_port() -> int:
    """A port free on loopback now (aiosmtpd cannot bind port 0: its issue #276)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class LoopThread:
    """An asyncio loop running in a daemon thread; `run(coro)` executes there and waits."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self.loop.is_running():
            try:
                self.run(cancel_all(), timeout=5)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
        if not self.loop.is_running():
            self.loop.close()


# --------------------------------------------------------------------------- IMAP (pymap)


def _pymap_args(port: int, user: str, password: str) -> argparse.Namespace:
    """The Namespace pymap's own `main()` would build for `--no-tls dict --demo-user ...`."""
    from pymap.backend import backends
    from pymap.service import services

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--debug", action="store_true")
    sub = parser.add_subparsers(dest="backend", required=True)
    for name, backend_type in backends.items():
        sp = backend_type.add_subparser(name, sub)
        sp.set_defaults(backend_type=backend_type)
    for service_type in services.values():
        service_type.add_arguments(parser)
    parser.set_defaults(skip_services=[], passlib_cfg=None)
    return parser.parse_args(["--host", HOST, "--port", str(port), "--no-tls", "dict",
                              "--demo-user", user, "--demo-password", password])


class LoopbackImapServer:
    """pymap (no CONDSTORE, no custom keywords: like Exchange Online) on 127.0.0.1."""

    def __init__(self, user: str, password: str, port: int | None = None) -> None:
        self.host = HOST
        self.port = port or free_port()
        self.user = user
        self.password = password
        self._loop = LoopThread(f"pymap-{self.port}")
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._backend, self._config = self._loop.run(self._init())
        self._listen()

    async def _init(self) -> tuple[Any, Any]:
        from pymap.backend.dict import DictBackend

        args = _pymap_args(self.port, self.user, self.password)
        backend, config = await DictBackend.init(args)
        config.apply_context()
        return backend, config

    def _listen(self) -> None:
        from proxyprotocol.reader import ProxyProtocolReader
        from pymap.imap import IMAPServer

        imap = IMAPServer(self._backend.login, self._config)

        async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                          sock_info: Any) -> None:
            self._writers.add(writer)
            try:
                await imap(reader, writer, sock_info)
            finally:
                self._writers.discard(writer)

        callback = ProxyProtocolReader(self._config.proxy_protocol).get_callback(tracked)

        async def start() -> asyncio.AbstractServer:
            return await asyncio.start_server(callback, host=HOST, port=self.port,
                                              reuse_address=True)

        self._server = self._loop.run(start())

    def drop_connections(self) -> None:
        """Close every client connection abruptly (the listener stays up)."""

        async def drop() -> None:
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()

        self._loop.run(drop())

    def _close_listener(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            async def close() -> None:
                server.close()
                await server.wait_closed()

            self._loop.run(close())

    def restart(self, downtime: float = 0.0) -> None:
        """Stop listening, drop every connection, then listen again on the same port; data kept."""
        self._close_listener()
        self.drop_connections()
        if downtime:
            time.sleep(downtime)  # a real outage for the client to live through
        self._listen()

    def stop(self) -> None:
        try:
            self._close_listener()
            self.drop_connections()
        finally:
            self._loop.stop()

    # Helpers that act through a separate IMAP client, like another user of the mailbox.

    def client(self) -> IMAPClient:
        c = IMAPClient(self.host, self.port, ssl=False, timeout=10)
        c.login(self.user, self.password)
        return c

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        self.append_many([raw], folder)

    def append_many(self, raws: list[bytes], folder: str = "INBOX") -> None:
        """Append over one connection (a login per message is slow on pymap)."""
        with self.client() as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)
            for raw in raws:
                c.append(folder, raw)

    def uids(self, folder: str = "INBOX") -> list[int]:
        with self.client() as c:
            if not c.folder_exists(folder):
                return []
            c.select_folder(folder, readonly=True)
            return sorted(c.search("ALL"))

    def messages(self, folder: str = "INBOX") -> list[bytes]:
        with self.client() as c:
            if not c.folder_exists(folder):
                return []
            c.select_folder(folder, readonly=True)
            uids = sorted(c.search("ALL"))
            if not uids:
                return []
            data = c.fetch(uids, ["BODY.PEEK[]"])
            return [data[u][b"BODY[]"] for u in uids]

    def recreate_folder(self, folder: str) -> None:
        """Delete and create `folder` again: a new UIDVALIDITY, messages gone."""
        with self.client() as c:
            if c.folder_exists(folder):
                c.delete_folder(folder)
            c.create_folder(folder)

    def __enter__(self) -> LoopbackImapServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_imap_server(user: str, password: str) -> LoopbackImapServer:
    return LoopbackImapServer(user, password)


# --------------------------------------------------------------------------- SMTP (aiosmtpd)


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    login: str | None = None


@dataclass
class _Injection:
    command: str          # "MAIL", "RCPT" or "DATA"
    reply: str            # e.g. "451 4.3.0 Try later"
    times: int


@dataclass
class _SmtpHandler:
    messages: list[ReceivedMail] = field(default_factory=list)
    injections: list[_Injection] = field(default_factory=list)
    xoauth2_tokens: dict[str, str] | None = None  # user -> accepted bearer token
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    def _injected(self, command: str) -> str | None:
        with self.lock:
            for inj in self.injections:
                if inj.command == command and inj.times > 0:
                    inj.times -= 1
                    return inj.reply
        return None

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any,  # aiosmtpd hook names
                          address: str, options: list[str]) -> str:
        reply = self._injected("MAIL")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any,  # aiosmtpd hook names
                          address: str, options: list[str]) -> str:
        reply = self._injected("RCPT")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd hook names
        reply = self._injected("DATA")
        if reply:
            return reply
        login = getattr(session.auth_data, "login", None)
        if isinstance(login, bytes):
            login = login.decode()
        with self.arrived:
            self.messages.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos),
                                              bytes(envelope.original_content or b""),
                                              login))
            self.arrived.notify_all()
        return "250 2.0.0 Accepted"

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> Any:  # aiosmtpd hook names
        """RFC-less but well-known: base64("user=U\\x01auth=Bearer T\\x01\\x01")."""
        import base64

        from aiosmtpd.smtp import AuthResult

        if len(args) == 2:
            blob = args[1].encode()
        else:
            got = await server.challenge_auth("", encode_to_b64=False)
            if not isinstance(got, bytes):
                return AuthResult(success=False, handled=False)
            blob = got
        try:
            fields = base64.b64decode(blob).decode().split("\x01")
        except Exception:  # noqa: BLE001 - malformed client data is an auth failure
            return AuthResult(success=False, handled=False)
        kv = dict(f.split("=", 1) for f in fields if "=" in f)
        user, token = kv.get("user"), kv.get("auth", "").removeprefix("Bearer ")
        tokens = self.xoauth2_tokens or {}
        if user in tokens and tokens[user] == token:
            return AuthResult(success=True, auth_data=_Login(user.encode()))
        return AuthResult(success=False, handled=False)


@dataclass
class _Login:
    login: bytes


class LoopbackSmtpServer:
    def __init__(self, auth: dict[str, str] | None = None,
                 tls_context: ssl.SSLContext | None = None, starttls: bool = False,
                 xoauth2_tokens: dict[str, str] | None = None, port: int | None = None) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.host = HOST
        self.port = port or free_port()
        self._handler = _SmtpHandler(xoauth2_tokens=xoauth2_tokens)
        kwargs: dict[str, Any] = {}
        if auth is not None or xoauth2_tokens is not None:
            users = dict(auth or {})

            def authenticator(server: Any, session: Any, envelope: Any,
                              mechanism: str, data: Any) -> AuthResult:
                if isinstance(data, LoginPassword):
                    user, pw = data.login.decode(), data.password.decode()
                    if users.get(user) == pw:
                        return AuthResult(success=True, auth_data=data)
                return AuthResult(success=False, handled=False)

            # aiosmtpd only counts STARTTLS as TLS; with implicit TLS the socket is TLS anyway.
            kwargs.update(authenticator=authenticator, auth_required=True,
                          auth_require_tls=starttls)
            if xoauth2_tokens is None:
                kwargs["auth_exclude_mechanism"] = ["XOAUTH2"]
        if starttls:
            if tls_context is None:
                raise ValueError("starttls needs a tls_context")
            kwargs.update(tls_context=tls_context, require_starttls=True)
            self._controller = Controller(self._handler, hostname=HOST, port=self.port,
                                          server_hostname="localhost", **kwargs)
        else:
            self._controller = Controller(self._handler, hostname=HOST, port=self.port,
                                          ssl_context=tls_context,
                                          server_hostname="localhost", **kwargs)
        self._controller.start()

    @property
    def messages(self) -> list[ReceivedMail]:
        with self._handler.lock:
            return list(self._handler.messages)

    def inject(self, command: str, reply: str, times: int = 1) -> None:
        """Make the next `times` MAIL/RCPT/DATA commands answer `reply` instead of accepting."""
        command = command.upper()
        if command not in {"MAIL", "RCPT", "DATA"}:
            raise ValueError("command must be MAIL, RCPT or DATA")
        with self._handler.lock:
            self._handler.injections.append(_Injection(command, reply, times))

    def wait_until(self, predicate: Callable[[ReceivedMail], bool], timeout: float = 5.0) -> bool:
        """Block until a message matching `predicate` has arrived (bounded real wait)."""
        deadline = time.monotonic() + timeout
        with self._handler.arrived:
            while not any(predicate(m) for m in self._handler.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._handler.arrived.wait(left)
        return True

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Block until `count` messages have arrived in total (bounded real wait)."""
        deadline = time.monotonic() + timeout
        with self._handler.arrived:
            while len(self._handler.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._handler.arrived.wait(left)
        return True

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> LoopbackSmtpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_smtp_server(auth: dict[str, str] | None = None, tls_context: ssl.SSLContext | None = None,
                      starttls: bool = False,
                      xoauth2_tokens: dict[str, str] | None = None) -> LoopbackSmtpServer:
    """`tls_context` alone: implicit TLS; with `starttls=True`: STARTTLS required."""
    return LoopbackSmtpServer(auth, tls_context, starttls, xoauth2_tokens)
