"""Logging for the command line: mailflow's own records at the chosen verbosity, and the
libraries that can log message content (raw IMAP traffic, HTTP bodies, SOAP, document text)
held at WARNING whatever `-v` says, because a message carries an adult's name, date of birth
and address. mailflow's own log lines carry inbound ids and case references only.
"""

from __future__ import annotations

import logging

# Loggers that log protocol traffic or document content at DEBUG/INFO (and their children).
CONTENT_LOGGERS = (
    "imapclient",          # imapclient.imaplib logs every command and response, whole messages included
    "exchangelib",         # SOAP requests and responses
    "httpx", "httpcore",   # Graph: URLs name mailboxes; bodies are MIME
    "urllib3", "requests", "requests_oauthlib", "oauthlib", "msal",
    "mail.log",            # aiosmtpd (tests and the demo)
    "pdfminer", "pdfplumber", "docx", "extract_msg", "RTFDE", "tnefparse", "mailparser", "olefile",
    "chardet", "charset_normalizer",
    "sqlalchemy",          # at DEBUG it logs result rows (raw messages); it sets itself to WARNING too
)
_QUIET_LEVEL = logging.WARNING
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ContentLoggerFilter(logging.Filter):
    """Drops records under WARNING from CONTENT_LOGGERS, even if a library lowers its own level."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= _QUIET_LEVEL:
            return True
        return not any(record.name == n or record.name.startswith(n + ".") for n in CONTENT_LOGGERS)


def error_summary(exc: BaseException) -> str:
    """What a log line or a stored reason may say about an exception, in one line: mailflow's own
    sentences (which name ids and references, never message content) in full; a database error by
    its kind and the constraint it broke, never its SQL or parameters (SQLAlchemy's str() carries
    both, and the parameters are message text: names, addresses, dates of birth); anything else by
    its type, since its text may quote a message, an address or SQL parameters."""
    from sqlalchemy.exc import IntegrityError, SQLAlchemyError, StatementError

    from mailflow.errors import MailflowError

    if isinstance(exc, MailflowError):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, StatementError):
        orig = exc.orig
        kind = f"{type(exc).__name__} ({type(orig).__name__})" if orig is not None else type(exc).__name__
        constraint = getattr(getattr(orig, "diag", None), "constraint_name", None)
        if constraint is None and isinstance(exc, IntegrityError) and orig is not None and orig.args:
            # SQLite names the columns, not the constraint: "UNIQUE constraint failed: t.a, t.b"
            text = str(orig.args[0])
            if text.startswith("UNIQUE constraint failed:"):
                constraint = text.partition(":")[2].strip()
        return f"{kind} on {constraint}" if constraint else kind
    if isinstance(exc, SQLAlchemyError):
        return type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__


def configure_logging(verbosity: int = 0) -> None:
    """0: INFO; 1 (`-v`): mailflow at DEBUG; 2 (`-vv`): every other library at DEBUG too.

    Whatever the verbosity, CONTENT_LOGGERS stay at WARNING.
    """
    root = logging.getLogger()
    if not root.handlers:
        stderr = logging.StreamHandler()
        stderr.setFormatter(logging.Formatter(_FORMAT))
        root.addHandler(stderr)
    for handler in root.handlers:
        if not any(isinstance(f, ContentLoggerFilter) for f in handler.filters):
            handler.addFilter(ContentLoggerFilter())
    root.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)
    logging.getLogger("mailflow").setLevel(logging.DEBUG if verbosity >= 1 else logging.INFO)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    for name in CONTENT_LOGGERS:
        logging.getLogger(name).setLevel(_QUIET_LEVEL)
