"""`mailflow doctor`'s checks against real loopback servers: what works and what it says when not."""

from __future__ import annotations

import pytest

from mailflow.connectors import ConnectorEnv
from mailflow.diagnostics import check_source, check_transport
from mailflow.loopback_servers import free_port, start_smtp_server

from .conftest import PASSWORD, USER

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture
def env(tmp_path) -> ConnectorEnv:
    (tmp_path / "pw").write_text(PASSWORD)
    (tmp_path / "bad").write_text("wrong")
    return ConnectorEnv(where="mailflow.toml [p.mailbox]", base_dir=tmp_path)


def imap_options(port: int, **kw) -> dict:
    return {"kind": "imap", "host": "127.0.0.1", "port": port, "username": USER,
            "password_file": "pw", "tls": "none", "timeout": 3, **kw}


def test_imap_ok(pymap_server, env) -> None:
    pymap_server.append(b"Subject: x\r\n\r\ny\r\n")
    ok, lines = check_source(imap_options(pymap_server.port), env)
    assert ok and "logged in as sab@example.org; INBOX has 1 message(s)" in lines[0]


def test_imap_wrong_password(pymap_server, env) -> None:
    ok, lines = check_source(imap_options(pymap_server.port, password_file="bad"), env)
    assert not ok and "refused the username or password" in lines[0]
    assert "xoauth2" in lines[0]


def test_imap_connection_refused(env) -> None:
    ok, lines = check_source(imap_options(free_port()), env)
    assert not ok and "refused the connection" in lines[0]


def test_imap_tls_mismatch(pymap_server, env) -> None:
    ok, lines = check_source(imap_options(pymap_server.port, tls="implicit"), env)
    assert not ok and "TLS handshake" in lines[0] and "'tls'" in lines[0]


def test_imap_missing_folder(pymap_server, env) -> None:
    ok, lines = check_source(imap_options(pymap_server.port, folder="Nope"), env)
    assert not ok and "cannot open folder 'Nope'" in lines[0]


def test_bad_config_is_one_line(env) -> None:
    ok, lines = check_source({"kind": "imap", "host": "imap.example.org", "username": USER,
                              "password_file": "pw", "tls": "none"}, env)
    assert not ok and "loopback" in lines[0]


def test_smtp_ok_and_send_test(env) -> None:
    with start_smtp_server(auth={"sab": PASSWORD}) as server:
        options = {"kind": "smtp", "host": "127.0.0.1", "port": server.port, "tls": "none",
                   "username": "sab", "password_file": "pw"}
        ok, lines = check_transport(options, env)
        assert ok and "authenticated as sab" in lines[0] and server.messages == []
        ok, lines = check_transport(options, env, send_test="it@council.gov.uk")
        assert ok and server.messages[0].rcpt_tos == ["it@council.gov.uk"]
        ok, lines = check_transport({**options, "password_file": "bad"}, env)
        assert not ok and "refused the username or password" in lines[0]


def test_smtp_no_starttls(env) -> None:
    with start_smtp_server() as server:
        ok, lines = check_transport({"kind": "smtp", "host": "127.0.0.1", "port": server.port,
                                     "tls": "starttls"}, env)
        assert not ok and "does not offer STARTTLS" in lines[0]
