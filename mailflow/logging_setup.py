"""Logging for the command line: mailflow's own records at the chosen verbosity, and the
libraries that can log message content (raw IMAP traffic, HTTP bodies, SOAP, document text)
held at WARNING whatever `-v` says, because a message carries an adult's name, date of birth
and address. mailflow's own log lines carry inbound ids and case references only.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from pythonjsonlogger.json import JsonFormatter

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


# Case references (SSP-2026-0001) and inbound ids (inbound #42) in mailflow's own lines: the JSON
# format carries them as fields, so a log platform can search by case without parsing text.
_REFERENCE = re.compile(r"\b[A-Z][A-Z0-9]{1,9}-\d{4}-\d{4,}\b")
_INBOUND = re.compile(r"\binbound #(\d+)\b")
LOG_FORMATS = ("text", "json")


class JsonLineFormatter(JsonFormatter):
    """One JSON object a line: time, level, logger, message, and `case` / `inbound` when the line
    names them (given with `extra={"case": ..., "inbound": ...}` or named in the message). The
    same text as the text format, so the same guarantee: ids and references, never content."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s",
                         rename_fields={"levelname": "level", "name": "logger", "asctime": "time"},
                         datefmt="%Y-%m-%dT%H:%M:%S%z")

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        message = record.getMessage()
        if "case" not in log_data and (ref := _REFERENCE.search(message)):
            log_data["case"] = ref.group(0)
        if "inbound" not in log_data and (inbound := _INBOUND.search(message)):
            log_data["inbound"] = int(inbound.group(1))


def _formatter(fmt: str) -> logging.Formatter:
    return JsonLineFormatter() if fmt == "json" else logging.Formatter(_FORMAT)


def set_log_format(fmt: str) -> None:
    """Text or JSON lines for mailflow's own handler (the config's `[logging] format`, applied as
    soon as the config is read; the lines before it, if any, are text)."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format {fmt!r}: expected one of {', '.join(LOG_FORMATS)}")
    for handler in logging.getLogger().handlers:
        if getattr(handler, _OURS, False):
            handler.setFormatter(_formatter(fmt))


_OURS = "_mailflow_handler"


def configure_logging(verbosity: int = 0, fmt: str = "text") -> None:
    """0: INFO; 1 (`-v`): mailflow at DEBUG; 2 (`-vv`): every other library at DEBUG too.

    Whatever the verbosity, CONTENT_LOGGERS stay at WARNING.
    """
    root = logging.getLogger()
    if not root.handlers:
        stderr = logging.StreamHandler()
        setattr(stderr, _OURS, True)
        root.addHandler(stderr)
    set_log_format(fmt)
    for handler in root.handlers:
        if not any(isinstance(f, ContentLoggerFilter) for f in handler.filters):
            handler.addFilter(ContentLoggerFilter())
    root.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)
    logging.getLogger("mailflow").setLevel(logging.DEBUG if verbosity >= 1 else logging.INFO)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    for name in CONTENT_LOGGERS:
        logging.getLogger(name).setLevel(_QUIET_LEVEL)
