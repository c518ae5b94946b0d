"""Connection checks for `mailflow doctor`: connect, authenticate, read the folder, for real.

`check_source(options, env)` and `check_transport(options, env, send_test=None)` return
(ok, lines): each line is a sentence a council IT officer can act on. Nothing is sent unless
`send_test` names an address.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Callable, Mapping
from datetime import UTC
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from imapclient.exceptions import IMAPClientError, LoginError

from mailflow.connectors import ConnectorEnv
from mailflow.errors import MailflowError
from mailflow.oauth import OAuthError

Result = tuple[bool, list[str]]


def explain_network_error(exc: BaseException, host: str, port: int, tls: str) -> str:
    where = f"{host}:{port}"
    if isinstance(exc, socket.gaierror):
        return f"the host name {host!r} cannot be found (DNS): check 'host'"
    if isinstance(exc, ConnectionRefusedError):
        return (f"{where} refused the connection: check 'host' and 'port', and that the "
                f"service is running there")
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return (f"no answer from {where}: a firewall probably blocks outgoing connections to "
                f"this port; ask your network team to allow it")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"the TLS certificate of {where} is not trusted ({exc.verify_message}): use "
                f"the host name on the certificate, or set 'ca_file' to your organisation's CA")
    if isinstance(exc, ssl.SSLError):
        return (f"the TLS handshake with {where} failed ({exc.reason}): check 'tls' "
                f"(\"implicit\" for ports 993/465, \"starttls\" for 143/587)")
    if isinstance(exc, OSError):
        return f"cannot connect to {where}: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"


def check_source(options: Mapping[str, Any], env: ConnectorEnv) -> Result:
    kind = options.get("kind")
    check = _SOURCE_CHECKS.get(str(kind))
    try:
        if check is None:
            from mailflow.sources.factory import build_source

            build_source(options, env).close()
            return True, [f"{kind} mailbox: configuration valid (nothing to connect to)"]
        return check(options, env)
    except MailflowError as exc:
        return False, [str(exc)]


# Transports that keep a copy in Sent Items (and check it after a crash): the doctor reads it.
_SENT_ITEMS_HINTS = {
    "graph": "check the Mail.ReadWrite/Mail.Send application permissions and the Application "
             "Access Policy",
    "ews": "check the credentials and that the account (or, for OAuth2, the app with "
           "full_access_as_app) has Full Access to the mailbox",
}


def check_transport(options: Mapping[str, Any], env: ConnectorEnv,
                    send_test: str | None = None) -> Result:
    kind = options.get("kind")
    try:
        if kind == "smtp":
            return _check_smtp(options, env, send_test)
        from mailflow.transports.factory import build_transport

        transport = build_transport(options, env)
        lines = [f"{kind} transport: configuration valid"]
        if kind in _SENT_ITEMS_HINTS:
            found = transport.already_sent("<mailflow-doctor-probe@invalid>")
            if found is None:
                return False, [f"{kind} transport: cannot read Sent Items of "
                               f"{options.get('mailbox')}: {_SENT_ITEMS_HINTS[kind]}"]
            lines.append(f"{kind} transport: signed in, Sent Items readable")
        if send_test:
            transport.send(_test_outgoing(_sender(options), send_test))
            lines.append(f"test message handed over for {send_test}")
        transport.close()
        return True, lines
    except MailflowError as exc:
        return False, [str(exc)]
    except Exception as exc:  # noqa: BLE001 - doctor reports, never crashes
        return False, [f"{kind} transport: {type(exc).__name__}: {exc}"]


# ---------------------------------------------------------------------------- IMAP


def _check_imap(options: Mapping[str, Any], env: ConnectorEnv) -> Result:
    from mailflow.sources.imap import ImapSource

    source = ImapSource.from_config(options, env)
    s = source.settings
    xoauth2 = options.get("auth") == "xoauth2"
    try:
        conn = source._connect()  # noqa: SLF001 - the doctor wants the raw exception
    except OAuthError as exc:
        return False, [str(exc)]
    except LoginError as exc:
        if xoauth2:
            return False, [
                f"Exchange refused the app's token for {s.username} ({_short(exc)}): grant the "
                f"application permission IMAP.AccessAsApp (Office 365 Exchange Online) with "
                f"admin consent, register the app with New-ServicePrincipal using the "
                f"enterprise application's object id, and give it "
                f"Add-MailboxPermission -AccessRights FullAccess on {s.username}"]
        return False, [f"{s.host} refused the username or password for {s.username} "
                       f"({_short(exc)}); Exchange Online no longer accepts passwords for IMAP: "
                       f"use auth = \"xoauth2\""]
    except IMAPClientError as exc:
        return False, [f"{s.host}: cannot open folder {s.folder!r} ({_short(exc)}): check "
                       f"'folder' (for a shared mailbox, log in as the shared address)"]
    except (OSError, ssl.SSLError) as exc:
        return False, [explain_network_error(exc, s.host, s.port, s.tls)]
    try:
        waiting = len(conn.search(["ALL"]))
        caps = {c.decode().upper() for c in conn.capabilities()}
    finally:
        conn.logout()
    lines = [f"IMAP {s.host}:{s.port} ({s.tls}): logged in as {s.username}; "
             f"{s.folder} has {waiting} message(s)"]
    if "IDLE" not in caps:
        lines.append(f"note: the server has no IDLE; mail is polled every {s.poll_seconds:g} s")
    if "MOVE" not in caps:
        lines.append("note: the server has no MOVE; COPY + EXPUNGE is used instead")
    return True, lines


# ---------------------------------------------------------------------------- Graph


def _check_graph(options: Mapping[str, Any], env: ConnectorEnv) -> Result:
    from mailflow.sources.graph import GraphSource

    source = GraphSource.from_config(options, env)
    try:
        source.folder_id(source.settings.folder)
    finally:
        source.close()
    return True, [f"Graph: token obtained; folder {source.settings.folder!r} of "
                  f"{source.settings.mailbox} readable"]


def _check_ews(options: Mapping[str, Any], env: ConnectorEnv) -> Result:
    from mailflow.sources.ews import EwsSource

    source = EwsSource.from_config(options, env)
    try:
        count = source.check()
    finally:
        source.close()
    return True, [f"EWS: connected; folder {source.settings.folder!r} has {count} message(s)"]


_SOURCE_CHECKS: dict[str, Callable[[Mapping[str, Any], ConnectorEnv], Result]] = {
    "imap": _check_imap, "graph": _check_graph, "ews": _check_ews,
}


# ---------------------------------------------------------------------------- SMTP


def _check_smtp(options: Mapping[str, Any], env: ConnectorEnv, send_test: str | None) -> Result:
    from mailflow.transports.base import SendError
    from mailflow.transports.smtp import SmtpTransport

    transport = SmtpTransport.from_config(options, env)
    s = transport.settings
    try:
        smtp = transport._open()  # noqa: SLF001 - the doctor wants the raw exception
    except SendError as exc:
        return False, [str(exc)]
    except smtplib.SMTPAuthenticationError as exc:
        if options.get("auth") == "xoauth2":
            return False, [
                f"Exchange refused the app's token for {s.username} ({exc.smtp_code}): grant "
                f"SMTP.SendAsApp with admin consent, register the service principal and "
                f"mailbox permission as for IMAP, and enable SMTP AUTH for the mailbox "
                f"(Set-CASMailbox -SmtpClientAuthenticationDisabled $false)"]
        return False, [f"{s.host} refused the username or password for {s.username} "
                       f"({exc.smtp_code} {_short(exc.smtp_error)})"]
    except smtplib.SMTPNotSupportedError as exc:
        return False, [f"{s.host}:{s.port}: {exc}; check 'tls' and 'auth'"]
    except (OSError, ssl.SSLError, smtplib.SMTPException) as exc:
        return False, [explain_network_error(exc, s.host, s.port, s.tls)]
    smtp.quit()
    lines = [f"SMTP {s.host}:{s.port} ({s.tls}): connected"
             + (f" and authenticated as {s.username}" if s.username else "")]
    if send_test:
        try:
            transport.send(_test_outgoing(s.username or "mailflow@localhost", send_test))
        except SendError as exc:
            return False, lines + [f"the test message was not accepted: {exc}"]
        finally:
            transport.close()
        lines.append(f"test message accepted for {send_test}")
    return True, lines


def _test_outgoing(sender: str, to: str) -> Any:
    from datetime import datetime

    from mailflow.transports.base import OutgoingMail

    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = "mailflow doctor: test message"
    msg["Message-ID"] = make_msgid(domain="mailflow.invalid")
    msg["Date"] = format_datetime(datetime.now(UTC))  # clock-ok: a header, not logic
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content("This is a test message sent by 'mailflow doctor --send-test'.\n")
    return OutgoingMail(str(msg["Message-ID"]), sender, (to,), bytes(msg))


def _sender(options: Mapping[str, Any]) -> str:
    return str(options.get("mailbox") or options.get("username") or "mailflow@localhost")


def _short(exc: BaseException | bytes | str) -> str:
    text = exc.decode("utf-8", "replace") if isinstance(exc, bytes) else str(exc)
    if text[:2] in ("b'", 'b"'):
        text = text[2:-1]
    return text[:200]
