"""Builds a mail transport from its config table by `kind`."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from mailflow.connectors import ConnectorEnv
from mailflow.errors import ConfigError
from mailflow.transports.base import MailTransport

KINDS = {
    "file": "mailflow.transports.file:FileTransport",
    "smtp": "mailflow.transports.smtp:SmtpTransport",
    "ews": "mailflow.transports.ews:EwsTransport",
    "graph": "mailflow.transports.graph:GraphTransport",
}


def build_transport(options: Mapping[str, Any], env: ConnectorEnv) -> MailTransport:
    kind = options.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{env.where}: kind: {kind!r} is not one of {', '.join(KINDS)}")
    module, cls = KINDS[kind].split(":")
    transport: MailTransport = getattr(importlib.import_module(module), cls).from_config(options, env)
    return transport
