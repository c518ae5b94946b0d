"""Errors every mailbox source raises (IMAP, Graph, EWS): the pipeline treats them alike."""

from __future__ import annotations

from mailflow.errors import MailflowError


class MailboxUnavailable(MailflowError):
    """The mailbox cannot be reached or read now; the next pass tries again (after backoff)."""


class MailboxAuthError(MailboxUnavailable):
    """The server refused the credentials or the token."""
