"""Connection checks for `mailflow doctor`: connect, authenticate, read the folder, for real;
the database (reachable, schema at the newest migration) and the reply-token key.

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
from typing import TYPE_CHECKING, Any

from imapclient.exceptions import IMAPClientError, LoginError

from mailflow.connection.oauth import OAuthError
from mailflow.connectors import ConnectorEnv
from mailflow.errors import MailflowError

if TYPE_CHECKING:
    from mailflow.config import Config

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
        refused = f"{s.host} refused the username or password for {s.username} ({_short(exc)})"
        if is_microsoft_host(s.host):
            return False, [f"{refused}; Exchange Online no longer accepts passwords for IMAP: "
                           f"use auth = \"xoauth2\""]
        return False, [f"{refused}: check 'username' and the password named by 'password_env' "
                       f"or 'password_file'"]
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


_MICROSOFT_HOSTS = ("outlook.office365.com", "outlook.office.com")
_MICROSOFT_DOMAINS = (".outlook.com", ".office365.com")


def is_microsoft_host(host: str) -> bool:
    """Exchange Online's IMAP/SMTP endpoints (only there is 'use XOAUTH2' the answer to a refused password)."""
    h = host.lower().rstrip(".")
    return h in _MICROSOFT_HOSTS or h.endswith(_MICROSOFT_DOMAINS) or h in {d[1:] for d in _MICROSOFT_DOMAINS}


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


# ---------------------------------------------------------------------------- database and key


def check_database(database_url: str) -> Result:
    """Reachable, and its schema at the newest migration this mailflow ships. Changes nothing."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from mailflow.db.database import MIGRATIONS

    url = make_url(database_url)
    shown = url.render_as_string(hide_password=True)
    if url.drivername.startswith("sqlite") and url.database not in (None, "", ":memory:"):
        from pathlib import Path

        if not Path(url.database).is_file():
            return False, [f"database {shown}: the file does not exist: run 'mailflow db upgrade' "
                           f"(the daemon also creates it when it starts)"]
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        reason = _short(str(getattr(exc, "orig", None) or exc).splitlines()[0])
        return False, [f"database {shown}: cannot connect ({reason})"]
    finally:
        engine.dispose()
    scripts = ScriptDirectory(str(MIGRATIONS))
    head = scripts.get_current_head()
    if current == head:
        return True, [f"database {shown}: reachable; schema at the newest migration ({head})"]
    if current is None:
        return False, [f"database {shown}: reachable but empty (no schema): run 'mailflow db upgrade'"]
    known = {rev.revision for rev in scripts.walk_revisions()}
    if current not in known:
        return False, [f"database {shown}: schema at {current}, which this mailflow does not know "
                       f"(its newest is {head}): is a newer mailflow using this database?"]
    return False, [f"database {shown}: schema at {current}, behind the newest migration {head}: "
                   f"run 'mailflow db upgrade'"]


def check_secret(config: Config) -> Result:
    """The reply-token key: set, readable, long enough (never shows the key). Changes nothing."""
    import stat

    from mailflow.errors import ConfigError
    from mailflow.secret_key import default_secret_path, load_secret_key

    path = None if config.secret_env else (config.secret_file or default_secret_path(config))
    if path is not None and config.secret_file is None and not path.exists():
        return True, [f"reply-token key: {path} will be created (0600) when mailflow first starts"]
    try:
        key = load_secret_key(config)
    except ConfigError as exc:
        return False, [str(exc)]
    source = f"${config.secret_env}" if config.secret_env else str(path)
    lines = [f"reply-token key: from {source}, {len(key)} characters"]
    if path is not None and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        lines.append(f"note: {path} can be read by other users: chmod 600 {path}")
    return True, lines
