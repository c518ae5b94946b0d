"""Builds a mailbox source from its config table by `kind`."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from mailflow.connectors import ConnectorEnv
from mailflow.errors import ConfigError
from mailflow.sources.base import MailboxSource

KINDS = {
    "maildir": "mailflow.sources.maildir:MaildirSource",
    "imap": "mailflow.sources.imap:ImapSource",
    "ews": "mailflow.sources.ews:EwsSource",
    "graph": "mailflow.sources.graph:GraphSource",
}


def build_source(options: Mapping[str, Any], env: ConnectorEnv) -> MailboxSource:
    kind = options.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{env.where}: kind: {kind!r} is not one of {', '.join(KINDS)}")
    module, cls = KINDS[kind].split(":")
    source: MailboxSource = getattr(importlib.import_module(module), cls).from_config(options, env)
    return source
