"""`mailflow doctor`'s checks against real loopback servers: what works and what it says when not."""

from __future__ import annotations

import pytest

from mailflow.connectors import ConnectorEnv
from mailflow.demo_servers import free_port, start_smtp_server
from mailflow.diagnostics import check_source, check_transport

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
    # Not Microsoft's server: no advice about Exchange Online or XOAUTH2.
    assert "Exchange" not in lines[0] and "xoauth2" not in lines[0] and "'password_file'" in lines[0]


def test_imap_wrong_password_at_exchange_online_suggests_xoauth2(pymap_server, env, monkeypatch) -> None:
    """The same refusal from outlook.office365.com (reached here on loopback) names Exchange Online."""
    from imapclient import IMAPClient

    from mailflow.sources.imap import ImapSource

    built = ImapSource.from_config.__func__  # type: ignore[attr-defined]

    def from_config(cls, options, env):
        source = built(cls, options, env)
        source._client_factory = lambda host, port, **kw: IMAPClient(  # noqa: SLF001
            "127.0.0.1", pymap_server.port, ssl=False, timeout=kw.get("timeout"))
        return source

    monkeypatch.setattr(ImapSource, "from_config", classmethod(from_config))
    options = imap_options(993, host="outlook.office365.com", tls="implicit", password_file="bad")
    ok, lines = check_source(options, env)
    assert not ok and lines[0].startswith("outlook.office365.com refused the username or password")
    assert "Exchange Online no longer accepts passwords for IMAP" in lines[0] and "xoauth2" in lines[0]


@pytest.mark.parametrize(("host", "microsoft"), [
    ("outlook.office365.com", True), ("OUTLOOK.OFFICE365.COM.", True), ("outlook.office.com", True),
    ("imap-mail.outlook.com", True), ("eur.outlook.com", True), ("x.office365.com", True),
    ("imap.council.gov.uk", False), ("127.0.0.1", False), ("outlook.office365.com.evil.example", False),
    ("notoutlook.com", False), ("mail.example-office365.com", False),
])
def test_microsoft_hosts(host: str, microsoft: bool) -> None:
    from mailflow.diagnostics import is_microsoft_host

    assert is_microsoft_host(host) is microsoft


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
