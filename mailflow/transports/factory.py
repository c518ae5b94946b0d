"""Builds a mail transport from its config table by `kind`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mailflow.connectors import ConnectorEnv, build_connector
from mailflow.transports.base import MailTransport

KINDS = {
    "file": "mailflow.transports.file:FileTransport",
    "smtp": "mailflow.transports.smtp:SmtpTransport",
    "ews": "mailflow.transports.ews:EwsTransport",
    "graph": "mailflow.transports.graph:GraphTransport",
}


def build_transport(options: Mapping[str, Any], env: ConnectorEnv) -> MailTransport:
    transport: MailTransport = build_connector(KINDS, options, env)
    return transport
