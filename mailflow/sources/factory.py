"""Builds a mailbox source from its config table by `kind`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mailflow.connectors import ConnectorEnv, build_connector
from mailflow.sources.base import MailboxSource

KINDS = {
    "maildir": "mailflow.sources.maildir:MaildirSource",
    "imap": "mailflow.sources.imap:ImapSource",
    "ews": "mailflow.sources.ews:EwsSource",
    "graph": "mailflow.sources.graph:GraphSource",
}


def build_source(options: Mapping[str, Any], env: ConnectorEnv) -> MailboxSource:
    source: MailboxSource = build_connector(KINDS, options, env)
    return source
