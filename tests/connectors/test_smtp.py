"""SmtpTransport against aiosmtpd: AUTH, STARTTLS, implicit TLS, XOAUTH2, injected replies."""

from __future__ import annotations

from mailflow.loopback_servers import start_smtp_server
from mailflow.transports.base import OutgoingMail
from mailflow.transports.smtp import SmtpSettings, SmtpTransport

from .conftest import make_mail


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
