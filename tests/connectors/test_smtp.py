"""SmtpTransport against aiosmtpd: AUTH, STARTTLS, implicit TLS, XOAUTH2, injected replies."""

from __future__ import annotations

import pytest

from mailflow.connection.oauth import StaticTokenProvider
from mailflow.demo_servers import LoopbackSmtpServer, free_port, start_smtp_server
from mailflow.transports.base import OutgoingMail, PermanentSendError, TransientSendError
from mailflow.transports.smtp import SmtpSettings, SmtpTransport

from .conftest import make_mail
from .helpers import RotatingTokens

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def outgoing(n: int | None = None) -> OutgoingMail:
    mid, raw = make_mail(n)
    return OutgoingMail(message_id=mid, envelope_from="sab@example.org",
                        recipients=("a@agency.example", "b@agency.example"), raw=raw)


def test_plain_loopback_with_password() -> None:
    with start_smtp_server(auth={"sab": "pw"}) as server:
        t = SmtpTransport(SmtpSettings(server.host, server.port, tls="none", username="sab"),
                          password="pw")
        mail = outgoing()
        t.send(mail)
        t.send(outgoing())                      # the connection is reused
        t.close()
        assert len(server.messages) == 2
        got = server.messages[0]
        assert got.mail_from == "sab@example.org"
        assert got.rcpt_tos == ["a@agency.example", "b@agency.example"]
        assert mail.message_id.encode() in got.raw
        assert got.login == "sab"


def test_starttls_with_password(server_tls, client_tls) -> None:
    with start_smtp_server(auth={"sab": "pw"}, tls_context=server_tls, starttls=True) as server:
        t = SmtpTransport(SmtpSettings("127.0.0.1", server.port, tls="starttls", username="sab"),
                          password="pw", ssl_context=client_tls)
        t.send(outgoing())
        t.close()
        assert len(server.messages) == 1 and server.messages[0].login == "sab"


def test_implicit_tls(server_tls, client_tls) -> None:
    with start_smtp_server(auth={"sab": "pw"}, tls_context=server_tls) as server:
        t = SmtpTransport(SmtpSettings("127.0.0.1", server.port, tls="implicit", username="sab"),
                          password="pw", ssl_context=client_tls)
        t.send(outgoing())
        assert len(server.messages) == 1


def test_untrusted_certificate_is_transient_and_sends_nothing(server_tls) -> None:
    with start_smtp_server(auth={"sab": "pw"}, tls_context=server_tls, starttls=True) as server:
        t = SmtpTransport(SmtpSettings("127.0.0.1", server.port, tls="starttls", username="sab"),
                          password="pw")            # default trust store: self-signed refused
        with pytest.raises(TransientSendError, match="CERTIFICATE_VERIFY_FAILED|SSL"):
            t.send(outgoing())
        assert server.messages == []


def test_starttls_missing_refuses_clear_text() -> None:
    with start_smtp_server() as server:
        t = SmtpTransport(SmtpSettings("127.0.0.1", server.port, tls="starttls"))
        with pytest.raises(TransientSendError, match="does not offer STARTTLS"):
            t.send(outgoing())
        assert server.messages == []


def test_xoauth2(server_tls, client_tls) -> None:
    tokens = {"sab@council.gov.uk": "tok-1"}
    with start_smtp_server(tls_context=server_tls, starttls=True, xoauth2_tokens=tokens) as server:
        t = SmtpTransport(SmtpSettings("127.0.0.1", server.port, tls="starttls",
                                       username="sab@council.gov.uk"),
                          token_provider=StaticTokenProvider("tok-1"), ssl_context=client_tls)
        t.send(outgoing())
        assert server.messages[0].login == "sab@council.gov.uk"
        bad = SmtpTransport(SmtpSettings("127.0.0.1", server.port, tls="starttls",
                                         username="sab@council.gov.uk"),
                            token_provider=StaticTokenProvider("expired"), ssl_context=client_tls)
        with pytest.raises(TransientSendError, match="refused the login"):
            bad.send(outgoing())
        assert len(server.messages) == 1


def test_xoauth2_refreshes_a_rejected_token_once(server_tls, client_tls) -> None:
    with start_smtp_server(tls_context=server_tls, starttls=True,
                           xoauth2_tokens={"sab@council.gov.uk": "fresh"}) as server:
        tokens = RotatingTokens("stale", "fresh")
        t = SmtpTransport(SmtpSettings("127.0.0.1", server.port, tls="starttls",
                                       username="sab@council.gov.uk"),
                          token_provider=tokens, ssl_context=client_tls)
        t.send(outgoing())
        assert tokens.invalidated == 1 and len(server.messages) == 1


@pytest.mark.parametrize("command, reply, error", [
    ("RCPT", "451 4.3.0 Mailbox temporarily unavailable", TransientSendError),
    ("RCPT", "550 5.1.1 No such user", PermanentSendError),
    ("DATA", "451 4.7.500 Server busy, try later", TransientSendError),
    ("DATA", "554 5.6.0 Message rejected", PermanentSendError),
    ("MAIL", "421 4.3.2 Service shutting down", TransientSendError),
    ("MAIL", "553 5.7.1 Sender not allowed", PermanentSendError),
])
def test_injected_replies_map_to_error_classes(command, reply, error) -> None:
    with start_smtp_server(auth={"sab": "pw"}) as server:
        t = SmtpTransport(SmtpSettings("127.0.0.1", server.port, tls="none", username="sab"),
                          password="pw")
        times = 2 if command == "RCPT" else 1       # both recipients
        server.inject(command, reply, times=times)
        with pytest.raises(error, match=reply.split()[0]):
            t.send(outgoing())
        assert server.messages == []
        t.send(outgoing())                          # the next attempt goes through
        assert len(server.messages) == 1


def test_partial_recipient_refusal_counts_as_sent() -> None:
    with start_smtp_server() as server:
        t = SmtpTransport(SmtpSettings("127.0.0.1", server.port, tls="none"))
        server.inject("RCPT", "550 5.1.1 No such user", times=1)
        t.send(outgoing())
        assert server.messages[0].rcpt_tos == ["b@agency.example"]


def test_connection_refused_is_transient() -> None:
    t = SmtpTransport(SmtpSettings("127.0.0.1", free_port(), tls="none", timeout=2))
    with pytest.raises(TransientSendError, match="cannot reach"):
        t.send(outgoing())


def test_server_restart_between_sends_reconnects() -> None:
    server = start_smtp_server()
    t = SmtpTransport(SmtpSettings("127.0.0.1", server.port, tls="none"))
    t.send(outgoing())
    port = server.port
    server.stop()
    again = LoopbackSmtpServer(port=port)
    try:
        t.send(outgoing())
        assert len(again.messages) == 1
    finally:
        again.stop()


def test_from_config_refuses_clear_text_off_loopback(tmp_path) -> None:
    from mailflow.connectors import ConnectorEnv
    from mailflow.errors import ConfigError
    from mailflow.transports.factory import build_transport

    (tmp_path / "pw").write_text("x")
    env = ConnectorEnv(where="mailflow.toml [p.transport]", base_dir=tmp_path)
    with pytest.raises(ConfigError, match="loopback"):
        build_transport({"kind": "smtp", "host": "smtp.office365.com", "tls": "none"}, env)
    t = build_transport({"kind": "smtp", "host": "smtp.office365.com", "username": "sab@x",
                         "password_file": "pw"}, env)
    assert isinstance(t, SmtpTransport) and t.settings.port == 587
    assert t.settings.tls == "starttls"
