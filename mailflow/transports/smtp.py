"""SMTP transport (smtplib): implicit TLS or STARTTLS (plain only to loopback), password or XOAUTH2.

Reply codes decide the error class: 4xx (and a lost connection) -> TransientSendError, which the
outbox retries with backoff; 5xx -> PermanentSendError. Authentication failures are transient:
an expired secret must not fail every queued message for good, and the watchdog reports the
growing outbox. A rejected XOAUTH2 token is refreshed once before giving up.

When some recipients are refused and others accepted, the message counts as sent (sending it
again would duplicate it for the others); the refusal is logged with the Message-ID.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mailflow.connection.oauth import (
    OUTLOOK_SCOPE,
    OAuthError,
    TokenProvider,
    token_provider_from_config,
)
from mailflow.connection.tls import check_tls_mode, ssl_context_from_options
from mailflow.connector_options import SmtpOptions, read_options
from mailflow.connectors import ConnectorEnv
from mailflow.errors import ConfigError
from mailflow.transports.base import (
    MailTransport,
    OutgoingMail,
    PermanentSendError,
    TransientSendError,
)

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    tls: str = "starttls"
    username: str | None = None
    timeout: float = 30.0
    local_hostname: str | None = None


class SmtpTransport(MailTransport):
    name = "smtp"

    def __init__(self, settings: SmtpSettings, *, password: str | None = None,
                 token_provider: TokenProvider | None = None,
                 ssl_context: ssl.SSLContext | None = None,
                 smtp_factory: Callable[..., smtplib.SMTP] | None = None) -> None:
        if (password is not None or token_provider is not None) and not settings.username:
            raise ValueError("a username is needed to authenticate")
        self.settings = settings
        self._password = password
        self._tokens = token_provider
        self._ctx = ssl_context if ssl_context is not None else ssl.create_default_context()
        self._factory = smtp_factory
        self._smtp: smtplib.SMTP | None = None

    @classmethod
    def from_config(cls, options: Mapping[str, Any], env: ConnectorEnv) -> SmtpTransport:
        where = env.where
        options = read_options(SmtpOptions, options, env.where)   # every key and type (connector_options.py)
        if not options.get("host"):
            raise ConfigError(f"{where}: host: required for an SMTP transport")
        host = str(options["host"])
        tls = check_tls_mode(options, host, where, "starttls")
        try:
            port = int(options.get("port", 465 if tls == "implicit" else 587))
            timeout = float(options.get("timeout", 30))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: port/timeout: not a number ({exc})") from None
        settings = SmtpSettings(host=host, port=port, tls=tls,
                                username=str(options["username"]) if options.get("username")
                                else None, timeout=timeout,
                                local_hostname=options.get("local_hostname"))
        auth = str(options.get("auth", "password" if settings.username else "none"))
        creds: dict[str, Any] = {}
        if auth == "password":
            if not settings.username:
                raise ConfigError(f"{where}: username: required with auth = \"password\"")
            creds["password"] = env.secret(options, "password")
        elif auth == "xoauth2":
            if not settings.username:
                raise ConfigError(f"{where}: username: required with auth = \"xoauth2\" "
                                  f"(the mailbox address that sends)")
            creds["token_provider"] = token_provider_from_config(options, env, OUTLOOK_SCOPE)
        elif auth != "none":
            raise ConfigError(f"{where}: auth: {auth!r} is not one of password, xoauth2, none")
        return cls(settings, ssl_context=ssl_context_from_options(options, env), **creds)

    # ------------------------------------------------------------------ connection

    def _open(self) -> smtplib.SMTP:
        s = self.settings
        factory = self._factory or (smtplib.SMTP_SSL if s.tls == "implicit" else smtplib.SMTP)
        kwargs: dict[str, Any] = {"timeout": s.timeout, "local_hostname": s.local_hostname}
        if s.tls == "implicit":
            kwargs["context"] = self._ctx
        smtp = factory(s.host, s.port, **kwargs)
        try:
            smtp.ehlo()
            if s.tls == "starttls":
                if not smtp.has_extn("starttls"):
                    raise TransientSendError(f"{s.host}:{s.port} does not offer STARTTLS; "
                                             f"refusing to send in clear text")
                smtp.starttls(context=self._ctx)
                smtp.ehlo()
            self._login(smtp)
        except BaseException:
            _quietly_close(smtp)
            raise
        return smtp

    def _login(self, smtp: smtplib.SMTP) -> None:
        user = self.settings.username
        if self._tokens is not None:
            assert user is not None
            for attempt in (1, 2):
                try:
                    token = self._tokens.token()
                except OAuthError as exc:
                    raise TransientSendError(str(exc)) from None
                try:
                    smtp.auth("XOAUTH2", lambda _=None, t=token: _xoauth2(user, t),
                              initial_response_ok=True)
                    return
                except smtplib.SMTPAuthenticationError:
                    self._tokens.invalidate()
                    if attempt == 2:
                        raise
        elif self._password is not None:
            assert user is not None
            smtp.login(user, self._password)

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            self._smtp = self._open()
        return self._smtp

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                _quietly_close(smtp)

    # ------------------------------------------------------------------ sending

    def send(self, mail: OutgoingMail) -> None:
        try:
            self._send(mail)
        except smtplib.SMTPServerDisconnected:
            # A kept-alive connection the server closed while idle: one fresh try.
            self._discard()
            try:
                self._send(mail)
            except smtplib.SMTPServerDisconnected as exc:
                self._discard()
                raise TransientSendError(f"{mail.message_id}: server disconnected ({exc})") \
                    from None

    def _send(self, mail: OutgoingMail) -> None:
        mid = mail.message_id
        try:
            smtp = self._connection()
            refused = smtp.sendmail(mail.envelope_from, list(mail.recipients), mail.raw)
        except smtplib.SMTPServerDisconnected:
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            self._reset()
            codes = [code for code, _ in exc.recipients.values()]
            detail = "; ".join(f"{c} {_text(m)}" for c, m in exc.recipients.values())
            if any(400 <= c < 500 for c in codes):
                raise TransientSendError(f"{mid}: recipients deferred: {detail}") from None
            raise PermanentSendError(f"{mid}: all recipients refused: {detail}") from None
        except smtplib.SMTPAuthenticationError as exc:
            self._discard()
            raise TransientSendError(f"{mid}: the SMTP server refused the login "
                                     f"({exc.smtp_code} {_text(exc.smtp_error)}); check the "
                                     f"credentials or, for Microsoft 365, SMTP.SendAsApp and "
                                     f"the mailbox permission") from None
        except smtplib.SMTPResponseException as exc:
            code, text = exc.smtp_code, _text(exc.smtp_error)
            if code == 421 or code < 400 or code >= 600:
                self._discard()
            else:
                self._reset()
            if 500 <= code < 600:
                raise PermanentSendError(f"{mid}: refused: {code} {text}") from None
            raise TransientSendError(f"{mid}: deferred: {code} {text}") from None
        except (OSError, smtplib.SMTPException) as exc:
            self._discard()
            raise TransientSendError(f"{mid}: cannot reach {self.settings.host}:"
                                     f"{self.settings.port} ({type(exc).__name__}: {exc})") \
                from None
        if refused:
            log.warning("%s: sent, but %d of %d recipients refused (codes %s)", mid,
                        len(refused), len(mail.recipients),
                        ",".join(str(c) for c, _ in refused.values()))

    def _reset(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.rset()
            except (smtplib.SMTPException, OSError):
                self._discard()

    def _discard(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            _quietly_close(smtp)


def _xoauth2(user: str, token: str) -> str:
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def _text(msg: bytes | str) -> str:
    return (msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg))[:200]


def _quietly_close(smtp: smtplib.SMTP) -> None:
    try:
        smtp.close()
    except OSError:
        pass
