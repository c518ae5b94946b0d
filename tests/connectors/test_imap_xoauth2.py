"""XOAUTH2 against a real IMAP server: Dovecot's oauth2 passdb checks each token with an
RFC 7662 introspection endpoint on loopback (standing in for Entra ID's verdict), as Exchange
Online checks the app-only token that MSAL gives mailflow."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from mailflow.connection.errors import MailboxAuthError
from mailflow.connection.oauth import MsalTokenProvider
from mailflow.connectors import ConnectorEnv, MemorySyncStateStore
from mailflow.demo_servers import HOST
from mailflow.diagnostics import check_source
from mailflow.sources.imap import ImapSettings, ImapSource
from tests.servers.dovecot import start_dovecot_server

from .conftest import PASSWORD, USER, make_mail
from .helpers import RotatingTokens

pytestmark = pytest.mark.dovecot


class Introspection:
    """Tokens it knows as active, each for one mailbox; every token it was asked about."""

    def __init__(self) -> None:
        self.active: dict[str, str] = {}
        self.asked: list[str] = []
        introspection = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server hook name
                length = int(self.headers.get("Content-Length", 0))
                token = parse_qs(self.rfile.read(length).decode()).get("token", [""])[0]
                introspection.asked.append(token)
                user = introspection.active.get(token)
                body = json.dumps({"active": True, "username": user} if user else {"active": False})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self._server.server_address[1]}/introspect"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def introspection() -> Iterator[Introspection]:
    endpoint = Introspection()
    yield endpoint
    endpoint.close()


@pytest.fixture
def dovecot_oauth2(introspection: Introspection) -> Iterator[object]:
    server = start_dovecot_server(USER, PASSWORD, oauth2_introspection_url=introspection.url)
    if server is None:
        pytest.skip("dovecot binary not installed (apt-get install dovecot-imapd; .ci/run does)")
    yield server
    server.close()


def oauth_source(server: object, tokens: RotatingTokens) -> ImapSource:
    settings = ImapSettings(host=server.host, port=server.port, username=USER,  # type: ignore[attr-defined]
                            tls="none", timeout=5)
    return ImapSource(settings, token_provider=tokens, state_store=MemorySyncStateStore(),
                      sleep=lambda _s: None)


def test_xoauth2_login_reads_the_mailbox(dovecot_oauth2, introspection) -> None:
    introspection.active["tok-valid"] = USER
    _, raw = make_mail()
    dovecot_oauth2.append(raw)
    source = oauth_source(dovecot_oauth2, RotatingTokens("tok-valid"))
    assert [m.raw for m in source.fetch()] == [raw]
    assert introspection.asked == ["tok-valid"]
    source.close()


def test_refused_token_is_invalidated_and_the_next_login_uses_a_fresh_one(
        dovecot_oauth2, introspection) -> None:
    introspection.active["tok-fresh"] = USER          # "tok-expired" is no longer active
    dovecot_oauth2.append(make_mail()[1])
    tokens = RotatingTokens("tok-expired", "tok-fresh")
    source = oauth_source(dovecot_oauth2, tokens)
    with pytest.raises(MailboxAuthError, match="refused the login"):
        list(source.fetch())
    assert tokens.invalidated == 1
    source._next_attempt = 0.0  # noqa: SLF001 - the reconnect backoff has run out (no sleeping)
    assert len(list(source.fetch())) == 1
    assert introspection.asked == ["tok-expired", "tok-fresh"]
    source.close()


def test_token_for_another_mailbox_is_refused(dovecot_oauth2, introspection) -> None:
    introspection.active["tok-other"] = "someone.else@example.org"
    source = oauth_source(dovecot_oauth2, RotatingTokens("tok-other", "tok-other-2"))
    with pytest.raises(MailboxAuthError):
        list(source.fetch())
    source.close()


@pytest.mark.parametrize(("token", "ok", "says"), [
    ("tok-valid", True, f"logged in as {USER}; INBOX has 0 message(s)"),
    # What Exchange Online answers when the app lacks IMAP.AccessAsApp or mailbox permission.
    ("tok-without-permission", False, "grant the application permission IMAP.AccessAsApp"),
])
def test_doctor_with_xoauth2(dovecot_oauth2, introspection, monkeypatch, token, ok, says) -> None:
    introspection.active["tok-valid"] = USER
    monkeypatch.setenv("MAILFLOW_TEST_CLIENT_SECRET", "s")
    # MSAL's own exchange with Entra ID is tested in test_oauth; here the token is what it got.
    monkeypatch.setattr(MsalTokenProvider, "token", lambda self: token)
    options = {"kind": "imap", "host": HOST, "port": dovecot_oauth2.port, "username": USER,
               "tls": "none", "auth": "xoauth2", "tenant_id": "T1", "client_id": "C1",
               "client_secret_env": "MAILFLOW_TEST_CLIENT_SECRET", "timeout": 5}
    result, lines = check_source(options, ConnectorEnv(where="mailflow.toml [p.mailbox]"))
    assert result is ok and says in lines[0]
